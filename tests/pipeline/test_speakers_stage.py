"""Speakers in front of an engine that gives no word times (as Step-Audio and the cascade
do): diarization runs on the gateway's audio anyway; word times are reported missing,
never invented."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.config import Settings
from stepaudio.engines.base import ModelOutput, Segment, TextJob, Usage, WindowJob
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline.run import Pipeline
from stepaudio.pipeline.speakers import NO_SEGMENTS_FOR_SPEAKERS
from stepaudio.pipeline.words import NO_WORD_TIMES
from stepaudio.testing.encode import write_audio
from stepaudio.testing.longaudio import load_pcm
from tests.helpers import clip


class NoWordsEngine:
    """Answers every window with two fixed segments and no word times."""

    name = "no-words"

    def __init__(self) -> None:
        self.asked_words: list[bool] = []
        self.prompts: list[str] = []

    def audio_modes(self) -> frozenset[Mode]:
        return frozenset({Mode.ASR, Mode.SUMMARIZE})

    def max_window_seconds(self, mode: Mode, params: ProcessParams) -> float:
        return 60.0

    def capacity(self) -> int:
        return 1

    def text_budget_chars(self) -> int:
        return 1000

    async def run_window(self, job: WindowJob) -> ModelOutput:
        self.asked_words.append(job.params.word_timestamps)
        if job.mode is Mode.SUMMARIZE:
            return ModelOutput("Two people speak.", usage=Usage())  # an answer, no transcript
        segments = [Segment(0.2, 4.8, "first voice"), Segment(6.2, 10.6, "second voice")]
        return ModelOutput("first voice second voice", segments=segments, usage=Usage())

    async def complete(self, job: TextJob) -> ModelOutput:
        self.prompts.append(job.prompt)
        return ModelOutput("A summary.", usage=Usage())

    async def health(self) -> dict[str, Any]:
        return {"ready": True}

    async def aclose(self) -> None:
        return None


def two_voices(tmp_path: Path) -> Path:
    left = load_pcm(clip("en/stereo_diarization_left.wav"))
    right = load_pcm(clip("en/stereo_diarization_right.wav"))
    pcm = np.concatenate([left, np.zeros(SAMPLE_RATE, np.int16), right])
    return write_audio(pcm, tmp_path / "two.wav")


def test_speakers_without_word_times(tmp_path: Path):
    path = two_voices(tmp_path)
    engine = NoWordsEngine()
    pipeline = Pipeline(engine, Settings(data_dir=tmp_path, _env_file=None))
    params = ProcessParams.from_user(mode="asr", diarize=True, word_timestamps=True)
    result = asyncio.run(pipeline.process(path, params))
    assert [(s.text, s.speaker) for s in result.segments] == [
        ("first voice", "A"),
        ("second voice", "B"),
    ]
    assert all(s.words is None for s in result.segments)
    assert result.warnings == [NO_WORD_TIMES.format(n=2, total=2)]
    assert engine.asked_words == [True]


def test_an_answer_without_transcript_says_it_has_no_speakers(tmp_path: Path):
    pipeline = Pipeline(NoWordsEngine(), Settings(data_dir=tmp_path, _env_file=None))
    params = ProcessParams.from_user(mode="summarize", diarize=True)
    result = asyncio.run(pipeline.process(two_voices(tmp_path), params))
    assert result.answer == "Two people speak." and result.segments == []
    assert result.warnings == [NO_SEGMENTS_FOR_SPEAKERS.format(mode="summarize")]


def test_summaries_are_told_who_said_what(tmp_path: Path):
    engine = NoWordsEngine()
    pipeline = Pipeline(engine, Settings(data_dir=tmp_path, _env_file=None))
    params = ProcessParams.from_user(mode="s2t", diarize=True)
    result = asyncio.run(pipeline.process(two_voices(tmp_path), params))
    assert result.summary == "A summary."
    assert [s.speaker for s in result.segments] == ["A", "B"]
    prompt = "\n".join(engine.prompts)
    assert "Speaker A: first voice" in prompt and "Speaker B: second voice" in prompt
