"""Share the engine's slots fairly between requests, and size windows to the slots.

One :class:`FairGate` per pipeline holds the engine's capacity. Each request opens a
:class:`Lease` on it and takes a slot per window. When a slot frees, it goes to the
waiting request with the fewest windows in flight, then the fewest windows granted so
far, then the one that came first: a short request that arrives while a 3-hour job has
200 windows queued gets the very next slot instead of waiting for all of them, and two
long jobs take turns (round-robin) instead of one finishing before the other starts.

Before all of that, a request someone waits for (``/api/process``, ``/v1``) does not
queue behind background tasks (``sync_first``): requests' windows count only against
each other, so a 10-second clip sent while an hour-long task holds every slot starts at
once, beside the task's running windows (the engine takes that many more: on the CPU the
two share the cores, the clip's latency about doubles instead of waiting for a window),
and the task's next windows wait until the requests are served. In the same way a short
request (one window) does not queue behind long requests' windows: short requests count
only against each other. So three lanes, each seeing the engine as if the lanes after it
were idle: short requests, long requests, background tasks; at worst the engine runs three
times its capacity, each lane's latency about doubling on shared cores instead of waiting.

A plain semaphore per request (or the engine's own FIFO limiter) would serve windows in
arrival order, so the long job's queued windows would all run first.

Drafts (live turns' texts: short, decoded greedily) are ``wide``: up to ``LANES`` times
the capacity of them run side by side in their lane, as a single greedy call leaves the
cores half idle; four sessions' turns that end together are done sooner together (four
11-s drafts of Whisper base on 2 cores: 1.25 s side by side, 1.93 s one after another).
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
from stepaudio.engines.base import LANES

SHORT, LONG, BACKGROUND = range(LANES)
"""The lanes (module doc), in the order they are served when ``sync_first``."""


class Lease:
    """One request's view of the gate: at most ``limit`` of its windows run at once."""

    def __init__(
        self, gate: FairGate, limit: int, seq: int, *, lane: int = LONG, wide: bool = False
    ):
        self._gate = gate
        self.limit = max(1, limit)
        self.seq = seq
        self.lane = lane
        """SHORT, LONG or BACKGROUND (a durable task's windows, served last)."""
        self.wide = wide
        """Drafts: their lane holds ``LANES`` times the capacity of them (module doc)."""
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

    def __init__(self, capacity: Callable[[], int], *, sync_first: bool = True):
        self._capacity = capacity
        self.sync_first = sync_first
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

    def lease(self, limit: int, *, lane: int = LONG, wide: bool = False) -> Lease:
        lease = Lease(self, limit, next(self._seq), lane=lane, wide=wide)
        self._leases.add(lease)
        return lease

    @asynccontextmanager
    async def session(
        self, limit: int, *, lane: int = LONG, wide: bool = False
    ) -> AsyncIterator[Lease]:
        lease = self.lease(limit, lane=lane, wide=wide)
        try:
            yield lease
        finally:
            lease.close()

    def _room(self, lease: Lease, capacity: int) -> bool:
        if lease.wide:
            capacity *= LANES
        if self._in_flight < capacity:
            return True
        if not self.sync_first:
            return False
        # A lane sees the engine as if the lanes after it were idle (module doc).
        return sum(x.in_flight for x in self._leases if x.lane <= lease.lane) < capacity

    def _dispatch(self) -> None:
        while True:
            capacity = max(1, self._capacity())
            candidates = [
                lease for lease in self._leases if lease._eligible() and self._room(lease, capacity)
            ]
            if not candidates:
                return
            best = min(candidates, key=self._rank)
            fut = next(f for f in best._waiters if not f.done())
            best._waiters.remove(fut)
            fut.set_result(None)
            best.in_flight += 1
            best.granted += 1
            self._in_flight += 1

    def _rank(self, lease: Lease) -> tuple[int, int, int, int]:
        lane = lease.lane if self.sync_first else LONG
        return (lane, lease.in_flight, lease.granted, lease.seq)


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
