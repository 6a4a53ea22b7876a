"""A subtitle checker on real transcripts: srt and vtt of English, Mandarin and a
diarized recording, from the real models, every cue read back from the file as a player
reads it and held to the broadcasters' rules (pipeline/subtitles.py)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import numpy as np
import pytest

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.pipeline.subtitles import CJK_LINE, LATIN_LINE, MAX_CUE_S, MAX_LINES
from stepaudio.testing.encode import write_audio
from stepaudio.testing.longaudio import load_pcm
from tests.helpers import clip

TIME = r"(\d\d):(\d\d):(\d\d)[,.](\d{3})"
ARROW = re.compile(rf"{TIME} --> {TIME}")
HAN = re.compile(r"[\u3400-\u9fff]")


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def read_cues(body: str) -> list[tuple[float, float, list[str]]]:
    """(start, end, lines shown) of each cue of an srt or vtt file."""
    cues = []
    for block in re.split(r"\n\s*\n", body.strip()):
        lines = block.splitlines()
        at = next((i for i, line in enumerate(lines) if ARROW.search(line)), None)
        if at is None:
            continue  # the WEBVTT header
        times = ARROW.search(lines[at]).groups()  # type: ignore[union-attr]
        shown = [re.sub(r"<[^>]+>", "", line) for line in lines[at + 1 :]]  # vtt voice tags
        cues.append((_seconds(*times[:4]), _seconds(*times[4:]), shown))
    return cues


def check(body: str) -> int:
    cues = read_cues(body)
    assert cues, body
    for start, end, lines in cues:
        assert 1 <= len(lines) <= MAX_LINES, (start, lines)
        assert 0 <= start < end and end - start <= MAX_CUE_S + 0.001, (start, end, lines)
        for line in lines:
            width = CJK_LINE if len(HAN.findall(line)) > len(line) / 2 else LATIN_LINE
            # A single word longer than a line is the only line allowed past it.
            assert len(line) <= width or " " not in line.strip(), (line, len(line))
    starts = [c[0] for c in cues]
    assert starts == sorted(starts)
    return len(cues)


@pytest.fixture(scope="module")
def two_readers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sonnet's reader, then JFK, a second apart."""
    pcm = np.concatenate(
        [
            load_pcm(clip("en/sonnet_1.mp3")),
            np.zeros(SAMPLE_RATE, np.int16),
            load_pcm(clip("en/jfk.flac")),
        ]
    )
    return write_audio(pcm, tmp_path_factory.mktemp("subs") / "two.wav")


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("en/sonnet_1.mp3", {}),
        ("zh/firered_TEST_MEETING_T0000000001_S00000.wav", {"language": "zh"}),
        ("two", {"diarize": "true"}),
    ],
)
def test_every_cue_keeps_the_rules(client: httpx.Client, two_readers, fmt, name, fields):
    path = two_readers if name == "two" else clip(name)
    with open(path, "rb") as f:
        r = client.post(
            "/v1/audio/transcriptions",
            files={"file": (path.name, f)},
            data={"model": "whisper-1", "response_format": fmt, **fields},
        )
    assert r.status_code == 200, r.text
    assert check(r.text) >= 2
    if name == "two":
        assert "Speaker A" in r.text and "Speaker B" in r.text


def test_the_checker_catches_a_broken_cue():
    long_line = "a " * 40
    with pytest.raises(AssertionError):
        check(f"1\n00:00:00,000 --> 00:00:09,000\n{long_line}\n")
    with pytest.raises(AssertionError):
        check("1\n00:00:00,000 --> 00:00:02,000\none\ntwo\nthree\n")
    assert check("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n<v Speaker A>Hello there\n") == 1
