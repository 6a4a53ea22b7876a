"""Conversations built from real clips of known speakers, with where each one talks.

The clips are tests/data's (their SOURCES.txt says who reads them: the Sense and
Sensibility clips share one LibriVox reader, the sonnets another, and AISHELL speaker
S0764 appears in two clips), so a voice comes back with other words later on, as in a
meeting, and the diarization must recognise it, not just match identical audio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.diarize.assign import Turn
from stepaudio.testing.longaudio import load_pcm


@dataclass(frozen=True)
class Line:
    speaker: str
    clip: str
    """Path under the data folder."""
    start: float = 0.0
    end: float | None = None
    """Seconds of the clip to take (None: to its end)."""


ENGLISH = [
    Line("jfk", "en/jfk.flac", 0.0, 5.5),
    Line("austen", "en/sense_and_sensibility_0870.wav"),
    Line("left", "en/stereo_diarization_left.wav"),
    Line("libri", "en/librispeech-1995-1837-0001.wav", 0.0, 4.4),
    Line("sonnets", "en/sonnet_1.mp3", 20.0, 30.0),
    Line("right", "en/stereo_diarization_right.wav"),
    Line("austen", "en/sense_and_sensibility_0920.wav"),
    Line("jfk", "en/jfk.flac", 5.5, None),
    Line("sonnets", "en/sonnet_2.mp3", 20.0, 30.0),
    Line("libri", "en/librispeech-1995-1837-0001.wav", 4.4, None),
]
"""Six English voices, five of them twice with different words."""

MANDARIN = [
    Line("thchs", "zh/thchs30_A11_0.wav", 0.0, 4.0),
    Line("s0764", "zh/aishell_BAC009S0764W0122.wav"),
    Line("s0724", "zh/aishell-BAC009S0724W0121.wav"),
    Line("meeting", "zh/firered_TEST_MEETING_T0000000001_S00000.wav", 0.0, 6.0),
    Line("s0764", "zh/firered_BAC009S0764W0121.wav"),
    Line("thchs", "zh/thchs30_A11_0.wav", 4.0, None),
    Line("meeting", "zh/firered_TEST_MEETING_T0000000001_S00000.wav", 6.0, None),
]
"""Four Mandarin voices, three of them twice."""


def conversation(
    lines: Sequence[Line], data: Path, gap_s: float = 0.8
) -> tuple[np.ndarray, list[Turn]]:
    """The lines one after another, ``gap_s`` of silence between, as 16-kHz int16, and
    the reference: who talks from when to when."""
    gap = np.zeros(int(gap_s * SAMPLE_RATE), dtype=np.int16)
    parts: list[np.ndarray] = []
    reference: list[Turn] = []
    at = 0
    for line in lines:
        pcm = load_pcm(data / line.clip)
        a = int(line.start * SAMPLE_RATE)
        b = pcm.size if line.end is None else int(line.end * SAMPLE_RATE)
        piece = pcm[a:b]
        reference.append(Turn(at / SAMPLE_RATE, (at + piece.size) / SAMPLE_RATE, line.speaker))
        parts += [piece, gap]
        at += piece.size + gap.size
    return np.concatenate(parts), reference


def _pieces(speaker: str, clip: str, start: float, end: float, step: float) -> list[Line]:
    out, at = [], start
    while at + step <= end + 1e-6:
        out.append(Line(speaker, clip, at, at + step))
        at += step
    return out


UTTERANCES: list[Line] = [
    Line("jfk", "en/jfk.flac", 0.0, 5.5),
    Line("jfk", "en/jfk.flac", 5.5, None),
    *(Line("austen", f"en/sense_and_sensibility_{n}.wav") for n in ("0870", "0890", "0920")),
    *(
        piece
        for n in (1, 2, 3)
        for piece in _pieces("sonnets", f"en/sonnet_{n}.mp3", 12.0, 48.0, 6.0)
    ),
    Line("libri", "en/librispeech-1995-1837-0001.wav", 0.0, 4.4),
    Line("libri", "en/librispeech-1995-1837-0001.wav", 4.4, None),
    Line("left", "en/stereo_diarization_left.wav"),
    Line("right", "en/stereo_diarization_right.wav"),
    Line("sr_english", "en/sr_english.wav"),
    Line("thchs", "zh/thchs30_A11_0.wav", 0.0, 4.0),
    Line("thchs", "zh/thchs30_A11_0.wav", 4.0, None),
    Line("s0764", "zh/aishell_BAC009S0764W0122.wav"),
    Line("s0764", "zh/firered_BAC009S0764W0121.wav"),
    Line("meeting", "zh/firered_TEST_MEETING_T0000000001_S00000.wav", 0.0, 6.0),
    Line("meeting", "zh/firered_TEST_MEETING_T0000000001_S00000.wav", 6.0, None),
    Line("s0724", "zh/aishell-BAC009S0724W0121.wav"),
]
"""Utterances of known speakers (several for most, with other words each time): what
``bench/speaker_id.py`` calibrates voice matching on. Three seconds or more each, as an
enrolment sample would be; the clips shorter than that are left out."""


def utterance(line: Line, data: Path) -> np.ndarray:
    pcm = load_pcm(data / line.clip)
    a = int(line.start * SAMPLE_RATE)
    b = pcm.size if line.end is None else int(line.end * SAMPLE_RATE)
    return pcm[a:b]
