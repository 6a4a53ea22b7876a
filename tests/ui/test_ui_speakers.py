"""The page's speakers (issue 13): a diarize box, and who said what in colour."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.pipeline.result import ProcessResult
from stepaudio.testing.encode import write_audio
from stepaudio.testing.longaudio import load_pcm
from stepaudio.ui.views import SPEAKER_COLOURS, speakers_html, transcript_text
from tests.helpers import clip


def spoken(*turns: tuple[str, str]) -> ProcessResult:
    segments = [
        {"start": float(i), "end": i + 1.0, "text": text, "speaker": who}
        for i, (who, text) in enumerate(turns)
    ]
    return ProcessResult.model_validate(
        {
            "answer": " ".join(text for _, text in turns),
            "full_response": "",
            "elapsed_time": 1.0,
            "mode": "asr",
            "segments": segments,
            "audio": {},
            "usage": {"audio_seconds": 3.0, "prompt_tokens": 0, "completion_tokens": 0},
            "timings": {"decode": 0.0, "model": 1.0, "total": 1.0},
            "engine": "embedded",
            "windows": 1,
        }
    )


def test_each_speaker_has_a_colour_and_nothing_is_markup():
    html = speakers_html(spoken(("A", "Hi."), ("B", "<script>x</script>"), ("A", "Bye.")))
    assert html.count(SPEAKER_COLOURS[0]) == 2 and html.count(SPEAKER_COLOURS[1]) == 1
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert re.findall(r'data-speaker="(\w)"', html) == ["A", "B", "A"]
    assert transcript_text(spoken(("A", "Hi."))) == "[00:00:00 → 00:00:01] Speaker A: Hi."
    assert speakers_html(spoken()) == ""


@pytest.mark.heavy
def test_diarize_box_shows_speakers_in_colour(ui, server: str, tmp_path: Path):
    expect = pytest.importorskip("playwright.sync_api").expect
    left = load_pcm(clip("en/stereo_diarization_left.wav"))
    right = load_pcm(clip("en/stereo_diarization_right.wav"))
    path = write_audio(
        np.concatenate([left, np.zeros(SAMPLE_RATE, np.int16), right]), tmp_path / "two.wav"
    )
    page, _ = ui
    page.goto(server + "/")
    page.locator("#sa-audio input[type=file]").set_input_files(str(path))
    expect(page.locator("#sa-info")).to_contain_text("00:00:11", timeout=30_000)
    page.get_by_label("Transcript (verbatim)").check()
    page.get_by_text("Advanced settings").click()
    page.locator("#sa-diarize input[type=checkbox]").check()
    page.locator("#sa-run").click()
    expect(page.locator(".sa-progress[data-state=completed]")).to_be_visible(timeout=240_000)
    turns = page.locator("#sa-speakers .sa-turn")
    expect(turns).to_have_count(2)
    expect(turns.nth(0)).to_contain_text("Speaker A")
    expect(turns.nth(1)).to_contain_text("Speaker B")
    expect(turns.nth(1)).to_contain_text(re.compile("horizon", re.I))
    expect(page.locator("#sa-transcript textarea")).to_have_value(
        re.compile(r"Speaker A: He began.*\n.*Speaker B: The horizon", re.I)
    )
