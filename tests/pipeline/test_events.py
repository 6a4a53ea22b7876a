"""Pipeline.events(): the one stream the OpenAI streaming route and the web page share.

``process`` is replaced by a script that reports windows out of order (as parallel windows
finish), so the ordering and the cancellation are checked in milliseconds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from stepaudio.audio.cut import Span
from stepaudio.config import Settings
from stepaudio.engines.base import ModelOutput
from stepaudio.errors import BackendUnavailable
from stepaudio.params import ProcessParams
from stepaudio.pipeline.result import ProcessResult
from stepaudio.pipeline.run import Pipeline, Progress, _InAudioOrder
from tests.pipeline.fake_engine import FakeTextEngine

SPANS = [Span(0, 10), Span(10, 20), Span(20, 30)]
RESULT = ProcessResult(
    answer="a b c",
    full_response="a b c",
    elapsed_time=0.1,
    mode="asr",
    audio={},
    usage={"audio_seconds": 30, "prompt_tokens": 0, "completion_tokens": 0},
    timings={"decode": 0, "model": 0, "total": 0},
    engine="fake",
    windows=3,
)


def scripted(tmp_path: Path, order: list[int], fail: Exception | None = None) -> Pipeline:
    pipeline = Pipeline(FakeTextEngine(str), Settings(data_dir=tmp_path, _env_file=None))

    async def process(source, params, *, on_progress=None, store=None, heard=False):
        on_progress(Progress(0, len(SPANS), "windows"))
        for done, i in enumerate(order, 1):
            await asyncio.sleep(0)
            out = ModelOutput("abc"[i])
            on_progress(Progress(done, len(SPANS), "windows", i, out, SPANS[i]))
        if fail is not None:
            raise fail
        await asyncio.sleep(0)
        return RESULT

    pipeline.process = process  # type: ignore[method-assign]
    return pipeline


async def collect(pipeline: Pipeline) -> list[Progress | ProcessResult]:
    return [e async for e in pipeline.events(Path("x.wav"), ProcessParams(mode="asr"))]


@pytest.mark.anyio
async def test_windows_come_in_audio_order_and_every_report_counts(tmp_path: Path):
    events = await collect(scripted(tmp_path, [2, 0, 1]))
    assert events[-1] is RESULT
    progress = [e for e in events[:-1] if isinstance(e, Progress)]
    assert [e.output.text for e in progress if e.output] == ["a", "b", "c"]
    assert [e.index for e in progress if e.output] == [0, 1, 2]
    # Window 2 finished first: a count-only report, its text held until 0 and 1 are out.
    assert [(e.done, e.index) for e in progress] == [(0, None), (1, None), (2, 0), (3, 1), (3, 2)]


@pytest.mark.anyio
async def test_errors_are_raised_after_the_windows_before_them(tmp_path: Path):
    seen: list[str] = []
    with pytest.raises(BackendUnavailable):
        async for event in scripted(tmp_path, [0], BackendUnavailable("down")).events(
            Path("x.wav"), ProcessParams(mode="asr")
        ):
            if isinstance(event, Progress) and event.output:
                seen.append(event.output.text)
    assert seen == ["a"]


@pytest.mark.anyio
async def test_leaving_early_cancels_the_work(tmp_path: Path):
    pipeline = Pipeline(FakeTextEngine(str), Settings(data_dir=tmp_path, _env_file=None))
    cancelled = asyncio.Event()

    async def process(source, params, *, on_progress=None, store=None, heard=False):
        on_progress(Progress(0, 1, "windows"))
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    pipeline.process = process  # type: ignore[method-assign]
    events = pipeline.events(Path("x.wav"), ProcessParams(mode="asr"))
    first = await anext(events)
    assert isinstance(first, Progress) and first.done == 0
    await events.aclose()
    assert cancelled.is_set()


def test_pieces_of_a_window_wait_for_the_windows_before_it():
    order = _InAudioOrder()

    def piece(index: int, text: str) -> Progress:
        return Progress(0, 3, "heard", index, ModelOutput(text), SPANS[index], heard=True)

    def window(index: int, done: int) -> Progress:
        return Progress(done, 3, "windows", index, ModelOutput("abc"[index]), SPANS[index])

    def texts(reports: list[Progress]) -> list[str]:
        return [r.output.text for r in reports if r.output]

    assert texts(order.feed(piece(0, "a1"))) == ["a1"]  # the first window: at once
    assert order.feed(piece(1, "b1")) == [] and order.feed(piece(2, "c1")) == []
    assert texts(order.feed(piece(0, "a2"))) == ["a2"]
    # Window 0 done: its text, then what window 1 has heard so far; window 2's still waits.
    assert texts(order.feed(window(0, 1))) == ["a", "b1"]
    assert texts(order.feed(piece(1, "b2"))) == ["b2"]
    assert texts(order.feed(window(2, 2))) == []  # done out of order: held
    assert texts(order.feed(window(1, 3))) == ["b", "c"]  # c1 is moot: window 2 is done
    assert texts(order.feed(piece(2, "late"))) == []  # after its window: nothing
