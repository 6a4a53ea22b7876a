"""Task workers: claim → run the pipeline (heartbeats keep the lease) → store the result.

A ``WorkerPool`` runs ``n`` task loops, the webhook outbox and the retention sweep, each
its own loop in the current event loop (a slow receiver never holds up the sweep or a
task): inside ``stepaudio serve`` or alone in ``stepaudio worker``. Every database call
goes through ``AsyncTaskStore`` (threads of its own, so a heartbeat never waits behind an
audio decode). Stopping hands running tasks back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid
from pathlib import Path

from stepaudio.audio.cut import Span
from stepaudio.audio.probe import stored_suffix
from stepaudio.config import Settings
from stepaudio.engines.base import ModelOutput
from stepaudio.errors import StepAudioError
from stepaudio.params import ProcessParams
from stepaudio.pipeline.run import Pipeline, Progress
from stepaudio.service import Admission, Lifecycle
from stepaudio.tasks.async_store import AsyncTaskStore
from stepaudio.tasks.lease import Claim, LeaseLost
from stepaudio.tasks.outbox import Outbox

log = logging.getLogger(__name__)

# How long a stopping worker waits for a cancelled window to wind down (a blocking model
# call in a thread cannot be interrupted); the task is handed back before that anyway.
_STOP_GRACE_S = 5.0


class DbWindows:
    """The pipeline's ``WindowStore``, backed by the task's ``task_windows`` rows."""

    def __init__(self, store: AsyncTaskStore, claim: Claim):
        self.store = store
        self.claim = claim

    async def load(self, index: int, span: Span) -> ModelOutput | None:
        return await self.store.load_window(self.claim.task_id, index, span)

    async def save(self, index: int, span: Span, output: ModelOutput) -> None:
        await self.store.save_window(self.claim, index, output, span)


class Worker:
    def __init__(
        self, name: str, store: AsyncTaskStore, lifecycle: Lifecycle, stop: asyncio.Event
    ) -> None:
        self.name = name
        self.store = store
        self.lifecycle = lifecycle
        self.settings: Settings = lifecycle.pipeline.settings
        self._stop = stop

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                claim = await self.store.claim(self.name)
                if claim is not None:
                    await self.execute(claim)
                    continue
            except Exception:
                # The database is away: keep trying, slowly, rather than die. A task this
                # worker held is taken again once its lease expires.
                log.exception("worker %s: task store error", self.name)
            await _sleep_unless(self._stop, self.settings.tasks.poll_s)

    async def execute(self, claim: Claim) -> None:
        """Run one claimed task to its end, or hand it back if told to stop."""
        scratch = self.lifecycle.pipeline.tmp_dir
        scratch.mkdir(parents=True, exist_ok=True)
        source = scratch / f"task-{claim.task_id}-{claim.token}{stored_suffix(claim.filename)}"
        job = asyncio.create_task(self._work(claim, source))
        try:
            await self._supervise(claim, job)
        finally:
            source.unlink(missing_ok=True)

    async def _work(self, claim: Claim, source: Path) -> None:
        await self.store.read_upload(claim.upload_sha256, source)
        params = ProcessParams.from_user(**claim.params)

        async def on_progress(p: Progress) -> None:
            held = await self.store.progress(claim, p.done, p.total)
            if not held:
                raise LeaseLost(claim.task_id)

        # Not admitted: a task waits in the task queue, not in the requests' one.
        async with self.lifecycle.open(
            source, params, face="task", owner=claim.owner, admit=False
        ) as run:
            result = await run.result(
                on_progress=on_progress, store=DbWindows(self.store, claim), background=True
            )
        await self.store.complete(claim, result.model_dump(mode="json"))

    async def _supervise(self, claim: Claim, job: asyncio.Task[None]) -> None:
        stopping = asyncio.create_task(self._stop.wait())
        try:
            while not job.done():
                await asyncio.wait(
                    {job, stopping},
                    timeout=self.settings.tasks.heartbeat_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if job.done():
                    break
                if stopping.done():
                    # Hand back first, so another worker may start at once; a window that
                    # finishes late cannot be saved any more (the lease token changed).
                    job.cancel()
                    with contextlib.suppress(Exception):  # else its lease simply expires
                        await self.store.release(claim)
                    await _settle(job)
                    return
                if not await self.store.heartbeat(claim):
                    job.cancel()  # cancelled by its owner, or taken again elsewhere
                    await _settle(job, self.settings.tasks.lease_s)
                    return
        except Exception:
            # Supervision failed (the database is away, so the lease cannot be renewed):
            # once it expires another worker takes the task, so this run must end now,
            # and this worker claims nothing new until it has.
            log.exception("task %s: supervision failed, stopping its run", claim.task_id)
            job.cancel()
            await _settle(job, self.settings.tasks.lease_s)
            return
        except BaseException:
            job.cancel()  # this worker itself is being cancelled: its run goes with it
            raise
        finally:
            stopping.cancel()
        await self._record_outcome(claim, job)

    async def _record_outcome(self, claim: Claim, job: asyncio.Task[None]) -> None:
        try:
            job.result()
            return
        except LeaseLost:
            return
        except asyncio.CancelledError:
            error: StepAudioError = StepAudioError("The task was interrupted.", code="interrupted")
            retry = True
        except StepAudioError as exc:
            # Another attempt only where the error says it would not fail the same way.
            error, retry = exc, not exc.permanent
        except Exception as exc:
            log.exception("task %s failed unexpectedly", claim.task_id)
            error, retry = StepAudioError(f"Internal error: {type(exc).__name__}: {exc}"), True
        await self.store.fail(claim, error.to_dict(), retry=retry)


class WorkerPool:
    """``count`` workers plus housekeeping; ``start()`` and ``stop()`` in one event loop."""

    def __init__(
        self, store: AsyncTaskStore, lifecycle: Lifecycle, settings: Settings, count: int
    ) -> None:
        self.store = store
        self.lifecycle = lifecycle
        self.settings = settings
        self.count = count
        self.prefix = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stop = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self.count <= 0:
            return
        for i in range(self.count):
            worker = Worker(f"{self.prefix}:{i}", self.store, self.lifecycle, self._stop)
            self._loops.append(asyncio.create_task(worker.run()))
        self._loops.append(asyncio.create_task(Outbox(self.store, self.settings).run(self._stop)))
        self._loops.append(asyncio.create_task(self._sweep()))

    async def stop(self) -> None:
        """Stop claiming, hand running tasks back, wait for the loops to end."""
        self._stop.set()
        if self._loops:
            await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()

    async def _sweep(self) -> None:
        """Retention and crash leftovers, every ``task_sweep_s``, on its own loop."""
        while not self._stop.is_set():
            try:
                await self.store.sweep()
            except Exception:
                log.exception("task retention sweep failed")
            await _sleep_unless(self._stop, self.settings.tasks.sweep_s)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _settle(job: asyncio.Task[None], grace_s: float = _STOP_GRACE_S) -> None:
    """Wait (up to ``grace_s``) for a cancelled job to wind down: a model call running in
    a thread cannot be interrupted, only waited for."""
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(asyncio.shield(job), grace_s)


async def run_standalone(settings: Settings, count: int) -> None:
    """``stepaudio worker``: workers alone against the configured database, until
    SIGTERM or SIGINT; then running tasks are handed back."""
    from stepaudio.engines.factory import build_engine

    store = await AsyncTaskStore.open(settings)
    engine = build_engine(settings)
    lifecycle = Lifecycle(
        Pipeline(engine, settings), Admission(settings.limits.max_pending_requests)
    )
    pool = WorkerPool(store, lifecycle, settings, count)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pool.start()
    try:
        await stop.wait()
    finally:
        await pool.stop()
        await engine.aclose()
        store.close()
