"""The fair gate, window retries and wave-balanced windows, without timing assertions.

The engine here is a stand-in whose every call waits until the test lets it finish, so
the order in which windows start is observed exactly, never inferred from clocks.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from stepaudio.audio.cut import Span, plan_cuts
from stepaudio.audio.decode import SAMPLE_RATE, DecodedAudio
from stepaudio.config import RetryPolicy, Settings
from stepaudio.engines.base import LANES, ModelOutput, Segment, TextJob, WindowJob
from stepaudio.errors import BackendError, BackendUnavailable, ContextLengthExceeded
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline.run import Pipeline
from stepaudio.pipeline.scheduler import BACKGROUND, SHORT, FairGate, balanced_cuts
from stepaudio.testing.encode import write_audio

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class HeldEngine:
    """An engine whose calls start when the gate lets them and end when the test says."""

    name = "held"

    def __init__(self, capacity: int = 1, *, hold: bool = True):
        self._capacity = capacity
        self.hold = hold
        self.started: list[tuple[str, float]] = []
        """(request tag, window offset) in the order calls started."""
        self.running = 0
        self.max_running = 0
        self._release: asyncio.Queue[None] = asyncio.Queue()
        self._started_event = asyncio.Event()
        self.failures: dict[float, list[Exception]] = {}
        """Errors to raise, in order, for the window starting within 1 s of a time."""
        self.calls: dict[float, int] = {}

    def audio_modes(self) -> frozenset[Mode]:
        return frozenset({Mode.ASR, Mode.TRANSLATE})

    def max_window_seconds(self, mode: Mode, params: ProcessParams) -> float:
        return 300.0

    def capacity(self) -> int:
        return self._capacity

    def text_budget_chars(self) -> int:
        return 8000

    async def run_window(self, job: WindowJob) -> ModelOutput:
        self.calls[job.offset] = self.calls.get(job.offset, 0) + 1
        self.started.append((job.params.language or "", job.offset))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self._started_event.set()
        try:
            errors = next((v for k, v in self.failures.items() if abs(k - job.offset) < 1), None)
            if errors:
                raise errors.pop(0)
            if self.hold:
                await self._release.get()
            else:
                # Yield a few times so that calls overlap when the gate allows it.
                for _ in range(5):
                    await asyncio.sleep(0)
        finally:
            self.running -= 1
        seconds = job.pcm.size / SAMPLE_RATE
        text = f"w{job.offset:g}"
        return ModelOutput(text, segments=[Segment(0.0, round(seconds, 3), text)])

    async def complete(self, job: TextJob) -> ModelOutput:
        return ModelOutput("summary")

    async def health(self) -> dict[str, Any]:
        return {"engine": self.name, "ready": True}

    async def aclose(self) -> None:
        return None

    # -- test controls --------------------------------------------------------------

    async def wait_started(self, n: int) -> None:
        """Until ``n`` calls in all have started."""
        while len(self.started) < n:
            self._started_event.clear()
            await self._started_event.wait()

    def finish_one(self) -> None:
        self._release.put_nowait(None)


def tone_file(path: Path, seconds: float) -> Path:
    """Bursts of noise with a short silence every second: cuttable anywhere."""
    rng = np.random.default_rng(0)
    pcm = (rng.standard_normal(int(seconds * SAMPLE_RATE)) * 3000).astype(np.int16)
    for s in range(int(seconds)):
        pcm[s * SAMPLE_RATE + 12000 : s * SAMPLE_RATE + 16000] = 0
    return write_audio(pcm, path)


def params(tag: str, **over: Any) -> ProcessParams:
    return ProcessParams(mode=Mode.ASR, language=tag, **over)


async def settle() -> None:
    """Let every ready task run until none can progress."""
    for _ in range(20):
        await asyncio.sleep(0)


async def until(condition: Callable[[], bool]) -> None:
    """Wait for a state (decoding runs in threads); the bound only stops a hung test."""
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.005)


def n_windows(pipeline: Pipeline, path: Path, p: ProcessParams) -> int:
    with DecodedAudio.from_file(path, pipeline.tmp_dir) as decoded:
        return len(pipeline.plan(decoded, p))


async def start_long_job(
    tmp_path: Path, pipeline: Pipeline, engine: HeldEngine
) -> tuple[asyncio.Task[Any], int]:
    """A long request of n >= 10 windows: its first running, the rest waiting."""
    long_file = tone_file(tmp_path / "long.wav", 60)
    long_params = params("long", segment_duration=5, parallel=8)
    n = n_windows(pipeline, long_file, long_params)
    assert n >= 10
    long_job = asyncio.create_task(pipeline.process(long_file, long_params))
    await engine.wait_started(1)
    await until(lambda: pipeline.gate.waiting == n - 1)
    return long_job, n


async def finish_short_then_long(
    engine: HeldEngine, short_job: asyncio.Task[Any], long_job: asyncio.Task[Any], n: int
) -> None:
    """Release the short request's window, then the long job's rest; check both."""
    engine.finish_one()
    short = await short_job
    assert short.windows == 1 and short.answer == "w0"
    for _ in range(n - 1):
        engine.finish_one()
    result = await long_job
    assert result.windows == n
    assert [tag for tag, _ in engine.started].count("long") == n


async def test_short_request_runs_at_once_beside_a_long_one(
    tmp_path: Path, settings: Settings
) -> None:
    engine = HeldEngine(capacity=1)
    pipeline = Pipeline(engine, settings)
    long_job, n = await start_long_job(tmp_path, pipeline, engine)
    short_file = tone_file(tmp_path / "short.wav", 3)
    short_job = asyncio.create_task(pipeline.process(short_file, params("short")))
    # A one-window request is in the short lane: it starts now, beside the long job's
    # running window, without waiting for it to end.
    await engine.wait_started(2)
    assert engine.started[1][0] == "short" and engine.running == 2
    engine.finish_one()  # the long job's window (first in line)
    await settle()
    # ...whose next window waits for the short request, as the engine's one slot is taken.
    assert len(engine.started) == 2
    await finish_short_then_long(engine, short_job, long_job, n)
    assert engine.max_running == 2


async def test_short_request_is_not_stuck_behind_a_long_job_without_lanes(
    tmp_path: Path, settings: Settings
) -> None:
    """``sync_first`` off: one lane; the short request still goes next, not last."""
    engine = HeldEngine(capacity=1)
    pipeline = Pipeline(
        engine, Settings(data_dir=settings.data_dir, sync_first=False, _env_file=None)
    )
    long_job, n = await start_long_job(tmp_path, pipeline, engine)
    short_file = tone_file(tmp_path / "short.wav", 3)
    short_job = asyncio.create_task(pipeline.process(short_file, params("short")))
    # The long job has n - 1 windows waiting; the short request's one goes next anyway.
    await until(lambda: pipeline.gate.waiting == n)
    engine.finish_one()
    await engine.wait_started(2)
    assert engine.started[1][0] == "short"
    await finish_short_then_long(engine, short_job, long_job, n)
    assert engine.max_running == 1


async def test_three_lanes_each_see_the_engine_as_their_own(
    tmp_path: Path, settings: Settings
) -> None:
    engine = HeldEngine(capacity=1)
    pipeline = Pipeline(engine, settings)
    task_file = tone_file(tmp_path / "task.wav", 30)
    long_file = tone_file(tmp_path / "long.wav", 30)
    short_file = tone_file(tmp_path / "short.wav", 3)
    many = {"segment_duration": 5, "parallel": 8}
    task = asyncio.create_task(pipeline.process(task_file, params("task", **many), background=True))
    await engine.wait_started(1)
    long_job = asyncio.create_task(pipeline.process(long_file, params("long", **many)))
    await engine.wait_started(2)
    short_job = asyncio.create_task(pipeline.process(short_file, params("short")))
    await engine.wait_started(3)
    assert [tag for tag, _ in engine.started] == ["task", "long", "short"]
    # Never a fourth: every lane has its one slot.
    await settle()
    assert engine.running == 3
    while not (task.done() and long_job.done() and short_job.done()):
        engine.finish_one()
        await settle()
        await asyncio.sleep(0.01)
    assert engine.max_running == 3
    assert (await short_job).windows == 1


async def test_two_long_jobs_take_turns(tmp_path: Path, settings: Settings) -> None:
    engine = HeldEngine(capacity=2)
    pipeline = Pipeline(engine, settings)
    a_file = tone_file(tmp_path / "a.wav", 40)
    b_file = tone_file(tmp_path / "b.wav", 40)

    pa, pb = (
        params("a", segment_duration=5, parallel=8),
        params("b", segment_duration=5, parallel=8),
    )
    n = n_windows(pipeline, a_file, pa)
    a = asyncio.create_task(pipeline.process(a_file, pa))
    await engine.wait_started(2)
    await until(lambda: pipeline.gate.waiting == n - 2)
    b = asyncio.create_task(pipeline.process(b_file, pb))
    await until(lambda: pipeline.gate.waiting == 2 * n - 2)
    for _ in range(2 * n):
        before, queued = len(engine.started), pipeline.gate.waiting
        engine.finish_one()
        if queued:
            await engine.wait_started(before + 1)
    await asyncio.gather(a, b)
    tags = [tag for tag, _ in engine.started]
    # a had both slots first; each freed slot then goes to whoever has fewer in flight
    # (then fewer granted), so b gets the next one and from then on they alternate.
    assert tags[:3] == ["a", "a", "b"]
    middle = tags[3 : 3 + 2 * (n - 3)]
    assert all(sorted(middle[k : k + 2]) == ["a", "b"] for k in range(0, len(middle), 2))
    assert engine.max_running == 2


async def test_a_request_never_exceeds_its_parallel_limit(
    tmp_path: Path, settings: Settings
) -> None:
    engine = HeldEngine(capacity=8, hold=False)
    pipeline = Pipeline(engine, settings)
    result = await pipeline.process(
        tone_file(tmp_path / "x.wav", 30), params("x", segment_duration=5, parallel=2)
    )
    assert result.windows >= 6
    assert engine.max_running == 2


async def test_gate_grants_fewest_in_flight_then_fewest_granted() -> None:
    gate = FairGate(lambda: 1)
    first, second = gate.lease(4), gate.lease(4)
    order: list[str] = []

    async def take(lease, tag: str) -> None:
        await lease.acquire()
        order.append(tag)

    await take(first, "first")
    waiters = [asyncio.create_task(take(first, "first")) for _ in range(3)]
    await settle()
    waiters.append(asyncio.create_task(take(second, "second")))
    await settle()
    assert gate.waiting == 4 and gate.in_flight == 1
    first.release()
    await settle()
    assert order == ["first", "second"]
    for _ in range(3):
        (second if order[-1] == "second" else first).release()
        await settle()
    assert order[2:] == ["first"] * 3
    await asyncio.gather(*waiters)


async def test_drafts_run_side_by_side_up_to_the_lanes_width() -> None:
    """Live turns' drafts: LANES times the capacity of them at once in their lane; an
    ordinary short request beside them still waits for the one slot."""
    gate = FairGate(lambda: 1)
    drafts = [gate.lease(1, lane=SHORT, wide=True) for _ in range(LANES + 1)]
    for lease in drafts[:LANES]:
        await asyncio.wait_for(lease.acquire(), 1)
    last = asyncio.create_task(drafts[LANES].acquire())
    plain = asyncio.create_task(gate.lease(1, lane=SHORT).acquire())
    await settle()
    assert gate.in_flight == LANES and not last.done() and not plain.done()
    drafts[0].release()
    await settle()
    assert last.done() and not plain.done()  # wide room for drafts only
    for lease in drafts[1:]:
        lease.release()
    await asyncio.wait_for(plain, 1)


async def test_cancelled_waiter_gives_no_slot_away() -> None:
    gate = FairGate(lambda: 1)
    lease = gate.lease(2)
    await lease.acquire()
    waiter = asyncio.create_task(lease.acquire())
    await settle()
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    lease.release()
    assert gate.in_flight == 0 and gate.waiting == 0
    other = gate.lease(1)
    await asyncio.wait_for(other.acquire(), 5)
    assert gate.in_flight == 1


async def test_failed_window_is_retried_alone(tmp_path: Path, settings: Settings) -> None:
    engine = HeldEngine(capacity=2, hold=False)
    engine.failures[9.0] = [
        BackendUnavailable("down"),
        BackendError("cut", code="stream_cut"),
    ]
    pipeline = Pipeline(engine, settings, retry=RetryPolicy(base_s=0))
    file = tone_file(tmp_path / "r.wav", 20)
    result = await pipeline.process(file, params("r", segment_duration=5))
    assert result.windows >= 4
    offsets = sorted(engine.calls)
    retried = [o for o in offsets if engine.calls[o] > 1]
    assert len(retried) == 1 and engine.calls[retried[0]] == 3
    assert all(engine.calls[o] == 1 for o in offsets if o not in retried)
    assert result.answer.split() == [f"w{o:g}" for o in offsets]


async def test_retries_stop_and_bad_requests_are_not_retried(
    tmp_path: Path, settings: Settings
) -> None:
    file = tone_file(tmp_path / "f.wav", 10)
    engine = HeldEngine(capacity=1, hold=False)
    engine.failures[0.0] = [BackendUnavailable("down")] * 3
    with pytest.raises(BackendUnavailable):
        await Pipeline(engine, settings, retry=RetryPolicy(base_s=0)).process(file, params("f"))
    assert engine.calls[0.0] == 3

    engine = HeldEngine(capacity=1, hold=False)
    engine.failures[0.0] = [ContextLengthExceeded("too long")]
    with pytest.raises(ContextLengthExceeded):
        await Pipeline(engine, settings, retry=RetryPolicy(base_s=0)).process(file, params("f"))
    assert engine.calls[0.0] == 1

    engine = HeldEngine(capacity=1, hold=False)
    engine.failures[0.0] = [BackendError("bad", code="http_422")]
    with pytest.raises(BackendError):
        await Pipeline(engine, settings, retry=RetryPolicy(base_s=0)).process(file, params("f"))
    assert engine.calls[0.0] == 1


def test_balanced_cuts_fill_whole_waves() -> None:
    rng = np.random.default_rng(1)
    seconds = 2700  # 34 plain windows: 2 full waves of 16 and 2 left over
    pcm = (rng.standard_normal(seconds * SAMPLE_RATE) * 3000).astype(np.int16)
    for s in range(seconds):
        pcm[s * SAMPLE_RATE + 12000 : s * SAMPLE_RATE + 16000] = 0
    spans = balanced_cuts(pcm, SAMPLE_RATE, 100.0, 16)
    plain = plan_cuts(pcm, SAMPLE_RATE, 100.0)
    waves = math.ceil(len(plain) / 16)
    assert len(plain) % 16  # the plain plan leaves the last wave part-empty
    assert len(plain) < len(spans) <= waves * 16
    assert max(s.duration for s in spans) <= 100.0

    def makespan(plan: list[Span]) -> float:
        # Windows start in order on 16 slots, each wave as long as its longest window.
        return sum(max(s.duration for s in plan[k : k + 16]) for k in range(0, len(plan), 16))

    assert makespan(spans) < 0.9 * makespan(plain)
    # Contiguous, nothing lost or doubled.
    assert spans[0].start == 0 and spans[-1].end == seconds
    assert all(a.end == b.start for a, b in zip(spans, spans[1:], strict=False))
    # Within one wave nothing changes.
    assert balanced_cuts(pcm[: 600 * SAMPLE_RATE], SAMPLE_RATE, 100.0, 16) == balanced_cuts(
        pcm[: 600 * SAMPLE_RATE], SAMPLE_RATE, 100.0, 1
    )


async def test_requests_go_before_background_tasks(tmp_path: Path, settings: Settings) -> None:
    engine = HeldEngine(capacity=2)
    pipeline = Pipeline(engine, settings)
    task_file = tone_file(tmp_path / "task.wav", 40)
    request_file = tone_file(tmp_path / "request.wav", 15)
    task_params = params("task", segment_duration=5, parallel=8)
    request_params = params("request", segment_duration=5, parallel=8)
    n_task = n_windows(pipeline, task_file, task_params)
    n_request = n_windows(pipeline, request_file, request_params)
    assert n_request >= 3

    task = asyncio.create_task(pipeline.process(task_file, task_params, background=True))
    await engine.wait_started(2)  # the task holds every slot
    await until(lambda: pipeline.gate.waiting == n_task - 2)
    request = asyncio.create_task(pipeline.process(request_file, request_params))
    # The request starts at once, beside the task's running windows, on as many slots
    # as the engine has, as if the task were not there.
    await engine.wait_started(4)
    assert engine.running == 4
    assert [tag for tag, _ in engine.started] == ["task", "task", "request", "request"]
    while not request.done():
        before = len(engine.started)
        engine.finish_one()
        await settle()
        if len(engine.started) == before:
            await asyncio.sleep(0.01)
    tags = [tag for tag, _ in engine.started]
    # None of the task's waiting windows started before the request's last one.
    assert tags[: 2 + n_request] == ["task", "task"] + ["request"] * n_request
    assert engine.max_running == 4
    assert not task.done()
    while not task.done():
        engine.finish_one()
        await settle()
    assert (await task).windows == n_task
    # With the request gone, the task alone never exceeds the engine's capacity again.
    assert engine.running == 0


async def test_sync_first_off_shares_slots_alike(tmp_path: Path, settings: Settings) -> None:
    engine = HeldEngine(capacity=2)
    pipeline = Pipeline(
        engine, Settings(data_dir=settings.data_dir, sync_first=False, _env_file=None)
    )
    task_file = tone_file(tmp_path / "task.wav", 40)
    request_file = tone_file(tmp_path / "request.wav", 20)
    task_params = params("task", segment_duration=5, parallel=8)
    request_params = params("request", segment_duration=5, parallel=8)
    n_task = n_windows(pipeline, task_file, task_params)
    n_request = n_windows(pipeline, request_file, request_params)
    task = asyncio.create_task(pipeline.process(task_file, task_params, background=True))
    await engine.wait_started(2)
    await until(lambda: pipeline.gate.waiting == n_task - 2)
    request = asyncio.create_task(pipeline.process(request_file, request_params))
    await until(lambda: pipeline.gate.waiting == n_task - 2 + n_request)
    for _ in range(4):
        before = len(engine.started)
        engine.finish_one()
        await engine.wait_started(before + 1)
    tags = [tag for tag, _ in engine.started]
    # Fewest in flight first, as between two requests: the request gets one slot, then
    # the task and the request alternate.
    assert tags[:3] == ["task", "task", "request"]
    assert sorted(tags[3:6]) != ["request"] * 3
    for _ in range(n_task + n_request):
        engine.finish_one()
    await asyncio.gather(task, request)


def test_gate_ranks_background_leases_last_only_when_sync_first() -> None:
    for sync_first, first in ((True, "request"), (False, "task")):
        gate = FairGate(lambda: 1, sync_first=sync_first)
        task = gate.lease(4, lane=BACKGROUND)
        request = gate.lease(4)
        task.in_flight = 0
        request.in_flight = 1  # the request already runs a window, the task none
        request.granted = 1
        ranked = min((task, request), key=gate._rank)
        assert (ranked is request) == (first == "request")


def test_the_plan_fills_whole_waves_of_the_engines_slots(settings: Settings) -> None:
    rng = np.random.default_rng(2)
    seconds = 2000  # 300 s windows: 7 plain ones, 2 waves on 4 slots with one nearly idle
    pcm = (rng.standard_normal(seconds * SAMPLE_RATE) * 3000).astype(np.int16)
    for s in range(seconds):
        pcm[s * SAMPLE_RATE + 12000 : s * SAMPLE_RATE + 16000] = 0
    # The plan reads only the samples and their rate.
    decoded = SimpleNamespace(samples=pcm, rate=SAMPLE_RATE)
    plain = plan_cuts(pcm, SAMPLE_RATE, 300.0)
    assert len(plain) % 4

    def plan(capacity: int, **over: Any) -> list[Span]:
        return Pipeline(HeldEngine(capacity=capacity), settings).plan(decoded, params("p", **over))

    four = plan(4)
    assert len(four) == math.ceil(len(plain) / 4) * 4  # 8: two full waves
    assert max(s.duration for s in four) <= 300.0
    assert four[0].start == 0 and four[-1].end == pytest.approx(seconds)
    # One slot, or a request limited to one window at a time: nothing to balance.
    assert plan(1) == plain
    assert plan(4, parallel=1) == plain
    # The caller's segment_duration is kept as asked (clamped to the engine's largest).
    assert plan(4, segment_duration=100) == plan_cuts(pcm, SAMPLE_RATE, 100.0)
