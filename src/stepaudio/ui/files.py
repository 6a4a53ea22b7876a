"""What Gradio may read and serve: the page's own files, nothing else on the machine.

Gradio decides which paths a caller may name in a ``FileData`` (and so have copied into
its cache, then served from ``/gradio_api/file=``) in ``processing_utils._check_allowed``,
which returns at once unless the Blocks has ``has_launched`` set. ``launch()`` sets it;
``gr.mount_gradio_app`` never does. Mounted, any path a stranger names --
``/proc/self/environ`` (the API keys), the task database -- was copied and served.

Turning Gradio's flag on would not be enough either: its check then takes the upload
folder from the process-wide ``GRADIO_TEMP_DIR`` (one per process, while each of our apps
has its own ``data_dir``) and, for outputs, also allows the whole working directory and
``/tmp``. So the policy here is our own and belongs to one app:

- every component's "move into the cache" refuses a source outside the page's cache
  (where uploads land) and ``data_dir/ui-downloads`` (the results the page writes): no
  other file, no URL (which Gradio would fetch: a server-side request);
- ``FileGate`` in front of the mounted Gradio app serves ``file=`` only from those two
  folders and refuses ``proxy=`` (a fetch-any-URL route this page never uses), and
  Gradio's ``stream/`` and ``process_recording`` routes (video streaming and webcam
  recordings, which this page has neither of; the latter took uploads outside
  admission): 404.

Confinement in the "move into the cache" step was not enough: Gradio skips that step for
a ``FileData`` flagged ``is_stream``, so the handler got whatever path the caller named
(``/proc/self/fd/18``: another tenant's upload in flight). So the page's handlers take a
file only if the page itself handed it out, to the same visitor: ``HandedOut`` records
each path Gradio's upload route returns, under the caller's identity, and each copy
Gradio then makes of it in the cache; a handler asks ``HandedOut.check`` before touching
a path, whatever flags the payload carried.

The cache lives in ``data_dir/ui-cache``, is emptied when the app starts and stops, and
Gradio's own ``delete_cache`` sweeps it while it runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import gradio as gr
from gradio.exceptions import InvalidPathError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stepaudio.api.errors import error_body
from stepaudio.errors import NotFound

CACHE_DIR = "ui-cache"
DOWNLOADS_DIR = "ui-downloads"
CACHE_SWEEP_S = 3600
"""How often Gradio's sweep runs, in seconds."""
CACHE_KEEP_S = 24 * 3600
"""Age (seconds) after which cached uploads and results are deleted: a day, like the
page's downloads."""

# Gradio's routes that hand out a file by path or fetch a URL, relative to its mount.
_FILE_ROUTE = re.compile(r"^(?:/gradio_api)?/file(?:=|/)(?P<path>.*)$", re.S)
# Routes this page never uses: fetch-any-URL, media streams, webcam recordings.
_UNUSED_ROUTE = re.compile(r"^(?:/gradio_api)?/(?:proxy=|stream/|process_recording)", re.S)
_UPLOAD_ROUTE = re.compile(r"^(?:/gradio_api)?/upload/?$")
MAX_HANDED_OUT = 100_000
"""Paths remembered at most; past it, those whose file is gone are forgotten first."""


def _real(path: str | os.PathLike[str]) -> Path:
    """The file a path really names: absolute, ``..`` and symbolic links resolved."""
    return Path(os.path.realpath(os.fspath(path)))


@dataclass(frozen=True)
class FilePolicy:
    """The two folders the page's files may come from and be served from."""

    cache_dir: Path
    downloads_dir: Path

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> FilePolicy:
        return cls(_real(data_dir / CACHE_DIR), _real(data_dir / DOWNLOADS_DIR))

    @property
    def roots(self) -> tuple[Path, Path]:
        return self.cache_dir, self.downloads_dir

    def allows(self, path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` is a local file inside one of our folders (URLs never are)."""
        text = os.fspath(path)
        if not text or "\x00" in text or "://" in text:
            return False
        real = _real(text)
        return any(real.is_relative_to(root) for root in self.roots)

    def blocked_paths(self, data_dir: Path) -> list[str]:
        """Everything else in ``data_dir``, for Gradio's own (second) check.

        Not ``data_dir`` itself: Gradio checks its block list before anything else, so
        that would block our two folders as well."""
        known = ["tasks.db", "tasks.db-wal", "tasks.db-shm", "uploads", "tmp", "models"]
        present = [p.name for p in data_dir.iterdir()] if data_dir.is_dir() else []
        ours = {p.name for p in self.roots}
        return [str(_real(data_dir / n)) for n in sorted({*known, *present} - ours)]

    def clear_cache(self) -> None:
        """Empty the cache (at start and stop: nothing of an earlier run is served)."""
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        self.cache_dir.mkdir(parents=True, exist_ok=True)


class HandedOut:
    """The files the page handed to each visitor: a handler takes no other path.

    Keyed by real path (symbolic links and ``/proc/self/fd/N`` resolve to the file they
    name, never to an entry here unless it is one); the value is the identities of the
    visitors it was handed to. Gradio names a cached file by the hash of its content, so
    two visitors uploading the same bytes get the same path, each handed it in their
    own right; a third who only knows the content gets nothing."""

    def __init__(self) -> None:
        self._owners: dict[Path, set[str]] = {}

    def add(self, path: str | os.PathLike[str], owner: str) -> None:
        if len(self._owners) >= MAX_HANDED_OUT:
            self._owners = {p: o for p, o in self._owners.items() if p.exists()}
        self._owners.setdefault(_real(path), set()).add(owner)

    def derive(self, source: str | os.PathLike[str], copy: str | os.PathLike[str]) -> None:
        """``copy`` was made by Gradio from ``source``: it belongs to the same visitors."""
        for owner in self._owners.get(_real(source), set()).copy():
            self.add(copy, owner)

    def owns(self, owner: str | None, path: str | os.PathLike[str] | None) -> bool:
        if owner is None or not path or "\x00" in os.fspath(path):
            return False
        real = _real(path)
        return owner in self._owners.get(real, set()) and real.is_file()

    def check(self, owner: str | None, path: str | os.PathLike[str] | None) -> Path:
        """``path`` as the real file, if the page handed it to ``owner``; else
        ``NotFound`` (the same answer whether the path exists or not)."""
        if path is None or not self.owns(owner, path):
            raise NotFound(
                "This recording was not uploaded through this page; upload it again.",
                param="audio",
                code="file_not_handed_out",
            )
        return _real(path)


# What Gradio's ``*move_resource_to_block_cache`` takes: a path, a URL, or nothing.
_Source = str | Path | None


def _refusal(path: Any) -> InvalidPathError:
    # Gradio reports this to the caller as a failed event, without the message.
    return InvalidPathError(f"File not allowed: {path}")


def confine_components(demo: gr.Blocks, policy: FilePolicy, handed: HandedOut) -> None:
    """Point every block's cache at ours and let it take files only from our folders;
    copies of a handed-out file are handed out to the same visitor.

    ``*move_resource_to_block_cache`` is the one place Gradio copies a caller's or a
    handler's file (or downloads a URL) into the cache, for inputs and outputs alike; an
    instance attribute replaces the method for this page's blocks only."""
    for block in [demo, *demo.blocks.values()]:
        if not hasattr(block, "move_resource_to_block_cache"):
            continue
        block.GRADIO_CACHE = str(policy.cache_dir)
        sync_move = block.move_resource_to_block_cache
        async_move = block.async_move_resource_to_block_cache
        # An instance attribute shadowing the method is the point; mypy forbids assigning one.
        block.move_resource_to_block_cache = _checked(policy, handed, sync_move)  # type: ignore[method-assign, assignment]
        block.async_move_resource_to_block_cache = _checked_async(policy, handed, async_move)  # type: ignore[method-assign, assignment]


def _checked(
    policy: FilePolicy, handed: HandedOut, move: Callable[[_Source], str | None]
) -> Callable[[_Source], str | None]:
    def move_if_allowed(path: _Source) -> str | None:
        if path is not None and not policy.allows(path):
            raise _refusal(path)
        copy = move(path)
        if path is not None and copy is not None:
            handed.derive(path, copy)
        return copy

    return move_if_allowed


def _checked_async(
    policy: FilePolicy, handed: HandedOut, move: Callable[[_Source], Awaitable[str | None]]
) -> Callable[[_Source], Awaitable[str | None]]:
    async def move_if_allowed(path: _Source) -> str | None:
        if path is not None and not policy.allows(path):
            raise _refusal(path)
        copy = await move(path)
        if path is not None and copy is not None:
            handed.derive(path, copy)
        return copy

    return move_if_allowed


class FileGate:
    """In front of the mounted Gradio app: ``file=`` only from our folders, none of the
    routes the page does not use, and each upload recorded as handed to its uploader.

    Gradio's own ``file=`` check allows whatever its (process-wide) upload folder and
    static paths hold; this one knows only this page's two folders."""

    def __init__(self, app: ASGIApp, policy: FilePolicy, handed: HandedOut):
        self.app = app
        self.policy = policy
        self.handed = handed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = _route_path(scope)
            if _UNUSED_ROUTE.match(path):
                await _not_served(scope, receive, send)
                return
            if (m := _FILE_ROUTE.match(path)) is not None:
                named = unquote(m["path"])  # Gradio decodes once more (encode_file_path)
                if not (self.policy.allows(named) and _real(named).is_file()):
                    await _not_served(scope, receive, send)
                    return
            if scope["method"] == "POST" and _UPLOAD_ROUTE.match(path):
                await self._recording_upload(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _recording_upload(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the upload on; the paths Gradio answers with are the caller's."""
        owner = scope.get("state", {}).get("caller")
        status = 0
        chunks: list[bytes] = []

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status == 200:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False) and owner is not None:
                    self._record(b"".join(chunks), owner)
            await send(message)

        await self.app(scope, receive, recording_send)

    def _record(self, body: bytes, owner: str) -> None:
        try:
            paths = json.loads(body)
        except ValueError:
            return
        if isinstance(paths, list):
            for path in paths:
                if isinstance(path, str) and self.policy.allows(path):
                    self.handed.add(path, owner)


def _route_path(scope: Scope) -> str:
    """The path below the mount point (Starlette keeps the full path in ``path``)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def _not_served(scope: Scope, receive: Receive, send: Send) -> None:
    """404 whether the file exists or not: the answer tells a stranger nothing."""
    error = NotFound("No such file on this page.", code="file_not_served")
    body = error_body(scope["path"], error.to_dict())
    await JSONResponse(body, status_code=error.status_code)(scope, receive, send)
