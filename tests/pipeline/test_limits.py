"""The pipeline (what a task worker runs) decodes through the cap; params refuse or clean
what would reach prompts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from stepaudio.config import Settings
from stepaudio.engines.embedded import EmbeddedEngine
from stepaudio.errors import PayloadTooLarge
from stepaudio.params import MAX_TEXT_CHARS, ProcessParams
from stepaudio.pipeline.run import Pipeline
from stepaudio.testing.longaudio import load_pcm
from stepaudio.testing.lying import lying_flac
from tests.helpers import clip


@pytest.mark.anyio
@pytest.mark.parametrize("limit", [60.0, None], ids=["limit-60", "no-limit"])
async def test_worker_run_stops_on_a_lying_header(
    limit: float | None, embedded: EmbeddedEngine, tmp_path: Path
):
    """A task whose file passed submission (say, before this check existed) still cannot
    make its worker decode it all: ``process`` refuses before any window runs."""
    pcm = np.tile(load_pcm(clip("en/jfk.flac")), 60)  # 11 minutes
    path = lying_flac(pcm, tmp_path / "liar.flac", 5.0)
    settings = Settings(data_dir=tmp_path, max_audio_seconds=limit, _env_file=None)
    pipeline = Pipeline(embedded, settings)
    with pytest.raises(PayloadTooLarge) as refused:
        await pipeline.process(path, ProcessParams(mode="asr"))
    assert refused.value.code == "audio_longer_than_header"
    assert list(pipeline.tmp_dir.glob("*")) == []


def test_question_and_instruction_lose_control_characters():
    p = ProcessParams(question="Who\x00 speaks?\r\n\tAnd\x1b[2J why?", instruction="a\x07b\nc")
    assert p.question == "Who speaks?\n\tAnd[2J why?"
    assert p.instruction == "ab\nc"


@pytest.mark.parametrize("field", ["question", "instruction"])
def test_question_and_instruction_are_capped(field: str):
    ProcessParams(**{field: "x" * MAX_TEXT_CHARS})
    with pytest.raises(ValidationError):
        ProcessParams(**{field: "x" * (MAX_TEXT_CHARS + 1)})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 0.0])
def test_segment_duration_must_be_finite_and_positive(value: float):
    with pytest.raises(ValidationError):
        ProcessParams(segment_duration=value)
