"""Word times on a 10-minute recording (issue 13): every word timed, in order inside its
segment, in the recording's time across the pipeline's windows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from stepaudio.config import Settings
from stepaudio.engines.embedded import EmbeddedEngine
from stepaudio.params import ProcessParams
from stepaudio.pipeline.run import Pipeline
from stepaudio.testing.encode import write_audio


@pytest.mark.heavy
def test_ten_minutes_of_words_in_order(
    minute: np.ndarray, settings: Settings, embedded: EmbeddedEngine, tmp_path: Path
):
    path = write_audio(np.tile(minute, 10), tmp_path / "ten.mp3")
    params = ProcessParams.from_user(mode="asr", language="en", word_timestamps=True)
    result = asyncio.run(Pipeline(embedded, settings).process(path, params))
    assert result.windows >= 2 and result.warnings == []
    last_end = 0.0
    for s in result.segments:
        assert s.words, s
        assert all(s.start <= w.start <= w.end <= s.end for w in s.words), s
        assert all(a.end <= b.start for a, b in zip(s.words, s.words[1:], strict=False)), s
        assert s.words[0].start >= last_end - 0.5, s  # segments follow each other
        last_end = s.words[-1].end
    assert last_end > 590  # the last window's words are in the recording's time
