"""``AsyncTaskStore``: how the API and the workers call the blocking ``TaskStore`` from
the event loop, in threads of its own.

Through ``anyio.to_thread.run_sync``'s default limiter, store calls would share 40 threads
with audio decodes and uploads: a burst of decodes would hold up heartbeats until leases
expired and tasks were taken away from healthy workers. Here short calls (claims,
heartbeats, progress, reads) have their own limiter, and calls that copy whole uploads or
sweep have another, so neither kind ever queues behind the other or behind the audio.
One instance per process, shared by the routes and the workers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import numpy as np
from anyio import CapacityLimiter

from stepaudio.audio.cut import Span
from stepaudio.config import Settings
from stepaudio.engines.base import ModelOutput
from stepaudio.tasks import voices
from stepaudio.tasks.lease import Claim
from stepaudio.tasks.records import TaskRecord
from stepaudio.tasks.status import TaskStatus
from stepaudio.tasks.store import TaskStore

T = TypeVar("T")

SHORT_CALLS = 10
"""Short calls at once. With ``BULK_CALLS`` this stays under PostgreSQL's connection pool
(5 + 10 overflow, ``db.py``), so a thread never waits for a connection."""
BULK_CALLS = 4
"""Upload copies (new tasks, a worker reading its source) and sweeps at once."""


class AsyncTaskStore:
    def __init__(self, store: TaskStore) -> None:
        self.sync = store
        """The blocking store (for code already in a thread, and tests)."""
        self._short = CapacityLimiter(SHORT_CALLS)
        self._bulk = CapacityLimiter(BULK_CALLS)

    @classmethod
    async def open(cls, settings: Settings) -> AsyncTaskStore:
        """``TaskStore.open`` (connect, migrate, clean up) without blocking the loop."""
        return cls(await anyio.to_thread.run_sync(TaskStore.open, settings))

    @property
    def settings(self) -> Settings:
        return self.sync.settings

    def close(self) -> None:
        self.sync.close()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run another short blocking database function (the webhook queue's, say) in the
        store's threads."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._short)

    async def _bulk_call(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._bulk)

    # -- the API's side -----------------------------------------------------------------

    async def create(
        self,
        *,
        owner: str,
        params: dict[str, Any],
        upload: Path,
        sha256: str,
        size: int,
        filename: str,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
    ) -> tuple[TaskRecord, bool]:
        """``TaskStore.create``: it stores the upload, so it runs with the bulk calls."""
        return await self._bulk_call(
            lambda: self.sync.create(
                owner=owner,
                params=params,
                upload=upload,
                sha256=sha256,
                size=size,
                filename=filename,
                idempotency_key=idempotency_key,
                webhook_url=webhook_url,
            )
        )

    async def check_pending_quota(self, owner: str) -> None:
        await self.call(self.sync.check_pending_quota, owner)

    async def get(self, task_id: str, owner: str | None = None) -> TaskRecord:
        return await self.call(self.sync.get, task_id, owner)

    async def list_tasks(
        self, owner: str, *, status: TaskStatus | None = None, limit: int = 50, offset: int = 0
    ) -> list[TaskRecord]:
        return await self.call(
            lambda: self.sync.list_tasks(owner, status=status, limit=limit, offset=offset)
        )

    async def cancel(self, task_id: str, owner: str | None = None) -> TaskRecord:
        return await self.call(self.sync.cancel, task_id, owner)

    async def delete(self, task_id: str, owner: str | None = None) -> None:
        await self.call(self.sync.delete, task_id, owner)

    async def voice_prints(self, owner: str, names: list[str]) -> dict[str, np.ndarray]:
        """The prints of ``owner``'s voices ``names`` (``*``: all): the lifecycle's
        ``voices``."""
        return await self.call(voices.prints, self.sync, owner, names)

    # -- the workers' side ----------------------------------------------------------------

    async def claim(self, worker: str) -> Claim | None:
        return await self.call(self.sync.claim, worker)

    async def heartbeat(self, claim: Claim) -> bool:
        return await self.call(self.sync.heartbeat, claim)

    async def progress(self, claim: Claim, done: int, total: int) -> bool:
        return await self.call(self.sync.progress, claim, done, total)

    async def complete(self, claim: Claim, result: dict[str, Any]) -> bool:
        return await self.call(self.sync.complete, claim, result)

    async def fail(self, claim: Claim, error: dict[str, Any], *, retry: bool) -> TaskStatus | None:
        return await self.call(lambda: self.sync.fail(claim, error, retry=retry))

    async def release(self, claim: Claim) -> bool:
        return await self.call(self.sync.release, claim)

    async def read_upload(self, sha256: str, dest: Path) -> None:
        await self._bulk_call(self.sync.read_upload, sha256, dest)

    async def load_window(self, task_id: str, index: int, span: Span | None) -> ModelOutput | None:
        return await self.call(self.sync.load_window, task_id, index, span)

    async def save_window(self, claim: Claim, index: int, output: ModelOutput, span: Span) -> None:
        await self.call(self.sync.save_window, claim, index, output, span)

    async def sweep(self) -> int:
        return await self._bulk_call(self.sync.sweep)
