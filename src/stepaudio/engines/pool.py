"""Several Step-Audio servers behind one Engine: least-loaded first, never over capacity.

Each backend has a capacity (its ``--max-num-seqs``), a health state kept fresh by a
background poll of ``/health`` and ``/v1/models``, and an in-flight count. A call waits
for a free slot on a healthy backend. A failed call is retried on another backend, after
a short backoff, only when its error is ``retryable`` (the one policy, kept by the error
classes; ``engines/http.py`` maps statuses to them): a refused connection, a 5xx, a cut
stream, never a 4xx. A backend that refuses connections leaves the rotation until the
health poll sees it back. Cancelling a call (the client went away) closes its backend
request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from stepaudio.config import RetryPolicy, Settings
from stepaudio.engines.base import ModelOutput, TextJob, WindowJob
from stepaudio.engines.stepaudio.engine import StepAudioEngine
from stepaudio.errors import (
    BackendTimeout,
    BackendUnavailable,
    StepAudioError,
)
from stepaudio.params import Mode, ProcessParams

T = TypeVar("T")


class _Slot:
    def __init__(self, engine: StepAudioEngine):
        self.engine = engine
        self.in_flight = 0
        self.failures = 0
        """Consecutive failed calls: a backend that keeps failing is tried last."""

    @property
    def healthy(self) -> bool:
        return self.engine.state.healthy

    @property
    def free(self) -> int:
        return self.engine.capacity() - self.in_flight


class BackendPool:
    name = "step-audio"

    def __init__(
        self,
        engines: Sequence[StepAudioEngine],
        settings: Settings,
        *,
        health_interval_s: float | None = None,
        retry: RetryPolicy | None = None,
    ):
        if not engines:
            raise ValueError("a pool needs at least one backend")
        self.settings = settings
        self._slots = [_Slot(e) for e in engines]
        self.health_interval_s = health_interval_s or settings.backend.health_interval_s
        self.retry = retry or settings.backend.retry
        self._changed: asyncio.Condition | None = None
        self._poller: asyncio.Task[None] | None = None
        self._starting: asyncio.Task[None] | None = None
        with contextlib.suppress(RuntimeError):
            # Built inside a running loop (the app's lifespan): learn each backend's
            # max_model_len now, before the first request plans its windows.
            asyncio.get_running_loop()
            self._starting = asyncio.ensure_future(self._start())

    @classmethod
    def from_settings(cls, settings: Settings) -> BackendPool:
        return cls([StepAudioEngine(b, settings) for b in settings.all_backends()], settings)

    @property
    def engines(self) -> list[StepAudioEngine]:
        return [s.engine for s in self._slots]

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Probe every backend once, then keep probing in the background."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        self._changed = asyncio.Condition()
        await self.refresh()
        self._poller = asyncio.create_task(self._poll(), name="backend-health")

    async def refresh(self) -> None:
        await asyncio.gather(*(s.engine.probe() for s in self._slots))
        await self._notify()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval_s)
            # A failing probe is recorded in the backend's state, never raised here.
            await self.refresh()

    async def _notify(self) -> None:
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    async def aclose(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for slot in self._slots:
            await slot.engine.aclose()

    # -- limits ---------------------------------------------------------------------

    def _healthy(self) -> list[_Slot]:
        return [s for s in self._slots if s.healthy] or self._slots

    def audio_modes(self) -> frozenset[Mode]:
        return self._slots[0].engine.audio_modes()

    def capacity(self) -> int:
        return max(1, sum(s.engine.capacity() for s in self._slots if s.healthy))

    def max_window_seconds(self, mode: Mode, params: ProcessParams) -> float:
        return min(s.engine.max_window_seconds(mode, params) for s in self._healthy())

    def text_budget_chars(self) -> int:
        return min(s.engine.text_budget_chars() for s in self._healthy())

    # -- calls ----------------------------------------------------------------------

    async def run_window(self, job: WindowJob) -> ModelOutput:
        return await self._call(lambda e: e.run_window(job))

    async def complete(self, job: TextJob) -> ModelOutput:
        return await self._call(lambda e: e.complete(job))

    async def _call(self, fn: Callable[[StepAudioEngine], Awaitable[T]]) -> T:
        await self.start()
        tried: dict[int, int] = {}
        timeouts = 0
        last: StepAudioError | None = None
        for attempt in range(1, self.retry.attempts + 1):
            if attempt > 1:
                await asyncio.sleep(self.retry.delay(attempt - 1))
            slot = await self._acquire(avoid=tried)
            tried[id(slot)] = tried.get(id(slot), 0) + 1
            try:
                result = await fn(slot.engine)
                slot.failures = 0
                return result
            except StepAudioError as exc:
                if not exc.retryable:
                    raise
                slot.failures += 1
                last = exc
                if isinstance(exc, BackendTimeout):
                    # A hung server is tried once more elsewhere, never waited on twice.
                    timeouts += 1
                    others = [s for s in self._slots if s.healthy and id(s) not in tried]
                    if timeouts > 1 or not others:
                        raise
                elif isinstance(exc, BackendUnavailable):
                    # Refused connections: out of rotation until the health poll sees it
                    # back. A 5xx or a cut stream says nothing about the next request.
                    slot.engine.state.healthy = False
                    slot.engine.state.last_error = exc.message
            finally:
                await self._release(slot)
        assert last is not None
        raise last

    async def _acquire(self, avoid: dict[int, int]) -> _Slot:
        assert self._changed is not None
        async with self._changed:
            while True:
                healthy = [s for s in self._slots if s.healthy]
                if not healthy:
                    raise BackendUnavailable("No healthy Step-Audio backend can take the work.")
                open_ = [s for s in healthy if s.free > 0]
                if open_:
                    # Prefer backends this call tried least, then those failing least
                    # lately, then the least loaded.
                    best = min(
                        open_,
                        key=lambda s: (
                            avoid.get(id(s), 0),
                            s.failures,
                            s.in_flight / s.engine.capacity(),
                        ),
                    )
                    best.in_flight += 1
                    return best
                await self._changed.wait()

    async def _release(self, slot: _Slot) -> None:
        slot.in_flight -= 1
        await self._notify()

    # -- health ---------------------------------------------------------------------

    def backends(self) -> list[dict[str, Any]]:
        return [{**s.engine.describe(), "in_flight": s.in_flight} for s in self._slots]

    async def health(self) -> dict[str, Any]:
        await self.start()
        return {
            "engine": self.name,
            "ready": any(s.healthy for s in self._slots),
            "capacity": self.capacity(),
            "backends": self.backends(),
        }
