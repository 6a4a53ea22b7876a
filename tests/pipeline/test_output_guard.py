"""The loop guard between every engine and the pipeline: one steadier retry, then 502.

The engine here is scripted (what Whisper or Step-Audio returned when they looped), so
the guard's policy is tested on any engine; the real models' loops are in
tests/engines/test_text_quality.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from stepaudio.engines.base import ModelOutput, Segment, TextJob, WindowJob
from stepaudio.errors import DegenerateOutput
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline import output_guard
from stepaudio.pipeline.reduce import answer_task, reduce_texts
from tests.helpers import reference

JFK = reference({"ref": "en/jfk.txt"})
SECONDS = 33


@dataclass
class Scripted:
    """Answers each call with the next scripted output; keeps the jobs it was given."""

    outputs: list[ModelOutput]
    jobs: list[Any] = field(default_factory=list)
    name: str = "scripted"

    def text_budget_chars(self) -> int:
        return 10_000

    async def run_window(self, job: WindowJob) -> ModelOutput:
        self.jobs.append(job)
        return self.outputs.pop(0)

    async def complete(self, job: TextJob) -> ModelOutput:
        self.jobs.append(job)
        return self.outputs.pop(0)


def window(mode: Mode = Mode.ASR) -> WindowJob:
    params = ProcessParams.from_user(mode=mode, temperature=0.7)
    return WindowJob(mode, np.ones(SECONDS * 16000, dtype=np.int16), 0.0, params)


def transcript(times: int) -> ModelOutput:
    segments = [Segment(i * 2.5, i * 2.5 + 2.5, JFK) for i in range(times)]
    return ModelOutput(" ".join([JFK] * times), segments=segments)


def test_one_segment_for_a_long_window_is_judged_by_its_own_length() -> None:
    # Step-Audio answers a 90 s window with one text, one segment over the whole window:
    # 225 words at a speaker's 2.5 a second are speech, not a loop in the first 30 s.
    words = " ".join(f"w{i}" for i in range(225))
    job = WindowJob(Mode.ASR, np.ones(90 * 16000, dtype=np.int16), 0.0, ProcessParams())
    speech = ModelOutput(words, segments=[Segment(0, 90, words)])
    assert output_guard.window_problem(job, speech) is None
    # Twice what 90 s can hold is still refused.
    many = " ".join(f"w{i}" for i in range(1200))
    assert output_guard.window_problem(job, ModelOutput(many, segments=[Segment(0, 90, many)]))


def test_a_looping_transcript_is_retried_steadier() -> None:
    engine = Scripted([transcript(13), transcript(3)])
    out = asyncio.run(output_guard.run_window(engine, window()))  # type: ignore[arg-type]
    assert out.text.count("ask not") == 3
    first, retry = engine.jobs
    assert not first.retry and retry.retry
    assert retry.params.temperature == 0.0
    assert retry.params.repetition_penalty >= output_guard.RETRY_PENALTY


def test_speech_said_three_times_is_not_a_loop() -> None:
    engine = Scripted([transcript(3)])
    out = asyncio.run(output_guard.run_window(engine, window()))  # type: ignore[arg-type]
    assert out.text.count("ask not") == 3 and len(engine.jobs) == 1


def test_a_loop_on_the_retry_too_is_refused() -> None:
    engine = Scripted([transcript(13), transcript(13)])
    with pytest.raises(DegenerateOutput) as err:
        asyncio.run(output_guard.run_window(engine, window()))  # type: ignore[arg-type]
    assert err.value.status_code == 502 and err.value.code == "degenerate_output"


def test_a_looping_translation_from_audio_is_refused() -> None:
    # What a Step-Audio backend could write for translate: one clause, again and again.
    loop = ModelOutput("这是一个全英文的词板的例子，" * 6)
    engine = Scripted([loop, loop])
    with pytest.raises(DegenerateOutput):
        asyncio.run(output_guard.run_window(engine, window(Mode.TRANSLATE)))  # type: ignore[arg-type]


def test_a_looping_answer_in_a_reduce_step_is_retried_then_refused() -> None:
    looping = ModelOutput("He asks them to serve. " * 5)
    good = ModelOutput("He asks what they can do for their country.")
    engine = Scripted([looping, good])
    params = ProcessParams.from_user(mode="understand", question="What does he ask?")
    out = asyncio.run(reduce_texts(engine, [JFK], answer_task("What does he ask?"), params))  # type: ignore[arg-type]
    assert out.text == good.text and len(engine.jobs) == 2
    engine = Scripted([looping, looping])
    with pytest.raises(DegenerateOutput):
        asyncio.run(reduce_texts(engine, [JFK], answer_task("What?"), params))  # type: ignore[arg-type]
