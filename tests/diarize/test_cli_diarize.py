"""`stepaudio process --diarize` as a user runs it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.cli import app
from stepaudio.testing.encode import write_audio
from stepaudio.testing.longaudio import load_pcm
from tests.helpers import clip


@pytest.fixture
def runner(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STEPAUDIO_DATA_DIR", str(data_dir))
    return CliRunner()


@pytest.mark.model
def test_diarized_subtitles(runner: CliRunner, tmp_path: Path):
    left = load_pcm(clip("en/stereo_diarization_left.wav"))
    right = load_pcm(clip("en/stereo_diarization_right.wav"))
    pcm = np.concatenate([left, np.zeros(SAMPLE_RATE, np.int16), right])
    path = write_audio(pcm, tmp_path / "two.mp3")
    args = ["process", str(path), "-m", "asr", "--diarize", "-f", "vtt", "--language", "en"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    cues = result.stdout.strip().split("\n\n")[1:]
    # A voice tag on every cue (a long segment becomes several readable cues, each
    # tagged); A speaks first, then B, and never again A.
    voices = [c.split("\n")[1].split(">")[0] for c in cues]
    assert voices[0] == "<v Speaker A" and voices[-1] == "<v Speaker B", voices
    changes = [v for i, v in enumerate(voices) if i == 0 or v != voices[i - 1]]
    assert changes == ["<v Speaker A", "<v Speaker B"], voices
    assert cues[0].split("\n")[1].startswith("<v Speaker A>He")


def test_contradictory_speaker_counts_exit_2(runner: CliRunner):
    args = ["process", str(clip("en/jfk.flac")), "--diarize", "--speakers", "3"]
    result = runner.invoke(app, [*args, "--max-speakers", "2"])
    assert result.exit_code == 2 and "num_speakers" in result.output
