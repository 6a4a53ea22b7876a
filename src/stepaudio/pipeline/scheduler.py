"""Share the engine's slots fairly between requests, and size windows to the slots.

One :class:`FairGate` per pipeline holds the engine's capacity. Each request opens a
:class:`Lease` on it and takes a slot per window. When a slot frees, it goes to the
waiting request with the fewest windows in flight, then the fewest windows granted so
far, then the one that came first: a short request that arrives while a 3-hour job has
200 windows queued gets the very next slot instead of waiting for all of them, and two
long jobs take turns (round-robin) instead of one finishing before the other starts.

A plain semaphore per request (or the engine's own FIFO limiter) would serve windows in
arrival order, so the long job's queued windows would all run first.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import numpy as np

from stepaudio.audio.cut import Span, plan_cuts


class Lease:
    """One request's view of the gate: at most ``limit`` of its windows run at once."""

    def __init__(self, gate: FairGate, limit: int, seq: int):
        self._gate = gate
        self.limit = max(1, limit)
        self.seq = seq
        self.in_flight = 0
        self.granted = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    def _eligible(self) -> bool:
        return self.in_flight < self.limit and any(not f.done() for f in self._waiters)

    async def acquire(self) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._gate._dispatch()
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                # Granted in the same tick the caller went away: give the slot back.
                self.release()
            else:
                fut.cancel()
                self._gate._dispatch()
            raise
        finally:
            if fut in self._waiters:
                self._waiters.remove(fut)

    def release(self) -> None:
        self.in_flight -= 1
        self._gate._in_flight -= 1
        self._gate._dispatch()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    def close(self) -> None:
        """The request is over: cancel anything still waiting and leave the gate."""
        for fut in self._waiters:
            fut.cancel()
        self._waiters.clear()
        self._gate._leases.discard(self)
        self._gate._dispatch()


class FairGate:
    """The engine's call slots, granted fairly between requests (see the module doc).

    ``capacity`` is read at every grant, so a pool whose healthy capacity changes is
    followed without rebuilding the gate.
    """

    def __init__(self, capacity: Callable[[], int]):
        self._capacity = capacity
        self._in_flight = 0
        self._leases: set[Lease] = set()
        self._seq = itertools.count()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        return sum(lease.waiting for lease in self._leases)

    @property
    def requests_waiting(self) -> int:
        """Requests with windows queued and none running yet."""
        return sum(1 for lease in self._leases if lease.in_flight == 0 and lease.waiting)

    def lease(self, limit: int) -> Lease:
        lease = Lease(self, limit, next(self._seq))
        self._leases.add(lease)
        return lease

    @asynccontextmanager
    async def session(self, limit: int) -> AsyncIterator[Lease]:
        lease = self.lease(limit)
        try:
            yield lease
        finally:
            lease.close()

    def _dispatch(self) -> None:
        while self._in_flight < max(1, self._capacity()):
            candidates = [lease for lease in self._leases if lease._eligible()]
            if not candidates:
                return
            best = min(candidates, key=lambda x: (x.in_flight, x.granted, x.seq))
            fut = next(f for f in best._waiters if not f.done())
            best._waiters.remove(fut)
            fut.set_result(None)
            best.in_flight += 1
            best.granted += 1
            self._in_flight += 1


def balanced_cuts(samples: np.ndarray, rate: int, max_len: float, slots: int) -> list[Span]:
    """Windows of at most ``max_len`` s, cut in pauses, that fill whole waves of ``slots``.

    37 windows on 16 free slots run in 3 waves, the last one nearly empty; 48 shorter
    windows run in the same 3 waves, each wave shorter, so the job ends sooner. Only
    used when a job needs more than one wave: within one wave shorter windows would
    only add per-call overhead (Step-Audio reasons ~1.5k tokens per call).
    """
    spans = plan_cuts(samples, rate, max_len)
    n = len(spans)
    if slots <= 1 or n <= slots or n % slots == 0:
        return spans
    target = math.ceil(n / slots) * slots
    total = samples.size / rate
    # Cuts land in the last fifth before each limit, so spans average ~0.9 × the limit;
    # start there and lengthen until the count fits the waves (never past max_len).
    limit = total / target / 0.9
    while limit < max_len:
        trial = plan_cuts(samples, rate, limit)
        if len(trial) <= target:
            return trial
        limit *= 1.03
    return spans
