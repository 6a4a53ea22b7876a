"""Uploads: refused early when too large, copied to our own file, always removed."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import UploadFile
from starlette.types import ASGIApp, Receive, Scope, Send

from stepaudio.errors import InvalidAudio, PayloadTooLarge

_CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredUpload:
    path: Path
    filename: str
    size: int
    sha256: str


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload is larger than this service's limit of {limit / 2**20:.0f} MiB.",
        param="audio",
    )


async def save_upload(upload: UploadFile | None, directory: Path, limit: int) -> StoredUpload:
    """Copy an upload into ``directory``, hashing it; the caller removes the file."""
    if upload is None or not hasattr(upload, "read"):
        raise InvalidAudio("The field 'audio' (a file) is required.", param="audio", code="missing")
    directory.mkdir(parents=True, exist_ok=True)
    suffix = Path(upload.filename or "").suffix[:10]
    fd, name = tempfile.mkstemp(prefix="upload-", suffix=suffix, dir=directory)
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
    return StoredUpload(Path(name), upload.filename or "audio", size, digest.hexdigest())


@asynccontextmanager
async def temporary_upload(
    upload: UploadFile | None, directory: Path, limit: int
) -> AsyncIterator[StoredUpload]:
    stored = await save_upload(upload, directory, limit)
    try:
        yield stored
    finally:
        stored.path.unlink(missing_ok=True)


class UploadLimitMiddleware:
    """Answer 413 from ``Content-Length`` alone, before any of the body is read."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope.get("headers", [])).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.limit:
                from starlette.responses import JSONResponse

                from stepaudio.api.errors import error_body

                error = too_large(self.limit)
                response = JSONResponse(
                    error_body(scope["path"], error.to_dict()),
                    status_code=413,
                    headers={"Connection": "close"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
