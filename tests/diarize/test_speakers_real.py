"""Diarization on real voices (issue 13): conversations built from tests/data's clips of
known speakers, each voice coming back later with other words."""

from __future__ import annotations

import numpy as np
import pytest

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.diarize.assign import Turn
from stepaudio.diarize.diarizer import Diarizer
from stepaudio.diarize.score import score
from stepaudio.testing.longaudio import load_pcm
from stepaudio.testing.speakers import ENGLISH, MANDARIN, conversation
from tests.helpers import DATA, clip


@pytest.fixture(scope="module")
def diarizer() -> Diarizer:
    return Diarizer()


@pytest.mark.parametrize("lines, voices", [(ENGLISH, 6), (MANDARIN, 4)], ids=["en", "zh"])
def test_several_speakers_counted_and_labelled(diarizer: Diarizer, lines, voices: int):
    pcm, reference = conversation(lines, DATA)
    found = diarizer(pcm)
    result = score(reference, found)
    assert result.speakers_expected == voices
    assert result.speakers_found == voices
    assert result.labelled_right >= 0.9, result
    # The voice detector covers the speech (the rest is pauses inside the clips).
    assert result.missed_s < 0.25 * result.reference_s, result
    # Labels are OpenAI's, in order of first appearance.
    assert found[0].speaker == "A"
    assert sorted({t.speaker for t in found}) == [chr(65 + i) for i in range(voices)]


def test_the_two_stereo_voices_apart(diarizer: Diarizer):
    left = load_pcm(clip("en/stereo_diarization_left.wav"))
    right = load_pcm(clip("en/stereo_diarization_right.wav"))
    pcm = np.concatenate([left, np.zeros(SAMPLE_RATE, np.int16), right])
    found = diarizer(pcm)
    cut = (left.size + SAMPLE_RATE / 2) / SAMPLE_RATE
    assert {t.speaker for t in found if t.end <= cut} == {"A"}
    assert {t.speaker for t in found if t.start >= cut} == {"B"}


def test_requested_counts_are_honoured(diarizer: Diarizer):
    pcm, reference = conversation(ENGLISH[:5], DATA)  # five voices
    assert score(reference, diarizer(pcm)).speakers_found == 5
    assert score(reference, diarizer(pcm, num=3)).speakers_found == 3
    assert score(reference, diarizer(pcm, high=2)).speakers_found == 2
    assert score(reference, diarizer(pcm, low=7)).speakers_found == 7


def test_silence_has_no_speakers(diarizer: Diarizer):
    assert diarizer(np.zeros(5 * SAMPLE_RATE, np.int16)) == []


def test_one_voice_is_one_speaker(diarizer: Diarizer):
    pcm, _ = conversation(ENGLISH[4:5] + ENGLISH[8:9], DATA)  # the sonnets' reader twice
    assert {t.speaker for t in diarizer(pcm)} == {"A"}


def test_score_counts_confusion():
    ref = [Turn(0, 10, "x"), Turn(10, 20, "y")]
    assert score(ref, [Turn(0, 10, "A"), Turn(10, 20, "B")]).der == 0
    wrong = score(ref, [Turn(0, 20, "A")])
    assert wrong.confusion_s == pytest.approx(10) and wrong.labelled_right == pytest.approx(0.5)


def test_known_voices_are_named(diarizer: Diarizer):
    pcm, reference = conversation(ENGLISH[:3], DATA)  # jfk, austen, left
    kennedy = diarizer.voice(load_pcm(clip("en/jfk.flac"))[int(5.5 * SAMPLE_RATE) :])
    austen = diarizer.voice(load_pcm(clip("en/sense_and_sensibility_0890.wav")))
    sonnets = diarizer.voice(load_pcm(clip("en/sonnet_3.mp3"))[: 15 * SAMPLE_RATE])
    assert kennedy is not None and austen is not None and sonnets is not None
    # Other clips of the same readers; the sonnets' reader does not speak here.
    known = {"Austen": austen, "Kennedy": kennedy, "Reader": sonnets}
    found = diarizer(pcm, known=known)
    result = score(reference, found)
    assert result.labelled_right >= 0.9 and result.speakers_found == 3
    by_ref = {
        r.speaker: {t.speaker for t in found if r.start <= t.start < r.end} for r in reference
    }
    assert by_ref == {"jfk": {"Kennedy"}, "austen": {"Austen"}, "left": {"A"}}
    assert diarizer.voice(np.zeros(3 * SAMPLE_RATE, np.int16)) is None
