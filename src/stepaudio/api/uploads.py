"""Uploads: copied to our own file (counted, hashed), always removed.

The key and the size were already checked as the bytes arrived (``guard.py``); the count
here is the route's own limit on the file part alone."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from stepaudio.audio.probe import stored_suffix
from stepaudio.errors import InvalidAudio, PayloadTooLarge, StepAudioError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredUpload:
    path: Path
    filename: str
    size: int
    sha256: str


def safe_filename(name: str | None) -> str:
    """The client's file name, kept only as a label: no path, no control characters (a NUL
    would break every file call), bounded length. Its suffix hints the container."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable())[-200:].strip()
    return cleaned or "audio"


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload is larger than this service's limit of {limit / 2**20:.0f} MiB.",
        param="audio",
    )


class Readable(Protocol):
    """What an upload is read through: FastAPI's ``UploadFile``, or bytes made to look like
    one (``api/openai_audio.py``)."""

    @property
    def filename(self) -> str | None: ...

    async def read(self, size: int = -1) -> bytes: ...


async def save_upload(upload: Readable | None, directory: Path, limit: int) -> StoredUpload:
    """Copy an upload into ``directory``, hashing it; the caller removes the file."""
    if upload is None or not hasattr(upload, "read"):
        raise InvalidAudio("The field 'audio' (a file) is required.", param="audio", code="missing")
    directory.mkdir(parents=True, exist_ok=True)
    filename = safe_filename(upload.filename)
    fd, name = tempfile.mkstemp(prefix="upload-", suffix=stored_suffix(filename), dir=directory)
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await upload.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise InvalidAudio("The audio file is empty.", param="audio", code="empty_file")
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return StoredUpload(Path(name), filename, size, digest.hexdigest())


def in_client_terms(exc: StepAudioError, stored: StoredUpload) -> StepAudioError:
    """``exc`` (changed in place) with no path of ours in its message: our copy of the
    upload is named by the client's file name, any other path under the data directory
    (decoding's spill files) by nothing. Libraries (PyAV) quote the file they failed on."""
    message = exc.message.replace(str(stored.path), stored.filename)
    data_dir = re.escape(str(stored.path.parent.parent))
    message = re.sub(rf"""\s*['"]?{data_dir}[^\s'"]*['"]?""", "", message)
    exc.message, exc.args = message, (message,)
    return exc


@asynccontextmanager
async def temporary_upload(
    upload: Readable | None, directory: Path, limit: int
) -> AsyncIterator[StoredUpload]:
    """The upload as our own file for the block, removed after it; errors leaving the
    block name the client's file, not ours (``in_client_terms``)."""
    stored = await save_upload(upload, directory, limit)
    try:
        yield stored
    except StepAudioError as exc:
        in_client_terms(exc, stored)
        raise
    finally:
        stored.path.unlink(missing_ok=True)
