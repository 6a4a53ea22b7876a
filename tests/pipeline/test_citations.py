"""Quotes in an answer checked against the transcript: real times or none, never the
model's own."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stepaudio.engines.base import Segment
from stepaudio.pipeline.citations import Citation, ground

JFK = [
    Segment(0.0, 4.2, "And so my fellow Americans,"),
    Segment(4.2, 8.1, "ask not what your country can do for you,", speaker="A"),
    Segment(8.1, 11.0, "ask what you can do for your country."),
]


def test_a_copied_example_time_is_replaced_by_the_real_one():
    """What the issue saw: [0:05] copied from the prompt's example, the line at 0:00."""
    answer, cites, unmatched = ground('He asks for service. [0:05] "And so my fellow…"', JFK)
    assert answer == 'He asks for service. [0:00] "And so my fellow…"'
    assert cites == [Citation(0.0, 4.2, "And so my fellow Americans,")] and unmatched == []


def test_loose_quotes_match_and_keep_their_speaker():
    answer, cites, _ = ground("[1:30] “Ask not what your country can do for you”", JFK)
    assert answer.startswith("[0:04] “Ask not") and cites[0].speaker == "A"
    assert (cites[0].start, cites[0].end) == (4.2, 8.1)


def test_a_quote_across_two_segments_cites_both():
    _, cites, _ = ground('"do for you, ask what you can do"', JFK)
    assert (cites[0].start, cites[0].end) == (4.2, 11.0)


def test_an_invented_quote_loses_its_time_and_is_reported():
    answer, cites, unmatched = ground('[0:07] "We choose to go to the moon."', JFK)
    assert answer == '"We choose to go to the moon."'
    assert cites == [] and unmatched == ["We choose to go to the moon."]


def test_a_time_with_no_quote_behind_it_is_removed():
    answer, _, _ = ground("At [0:09] he turns to the world. [1:02:03] Then he stops.", JFK)
    assert "[" not in answer and "he turns to the world" in answer


def test_chinese_quotes():
    segments = [Segment(0.0, 3.0, "今天我们讨论预算。"), Segment(3.0, 6.0, "明年增加百分之十。")]
    answer, cites, _ = ground("预算会增加。[0:00]“明年增加百分之十”", segments)
    assert answer == "预算会增加。[0:03] “明年增加百分之十”" and cites[0].start == 3.0


@given(st.text(max_size=300))
def test_no_time_is_ever_left_that_no_citation_stands_behind(text: str):
    answer, cites, _ = ground(text, JFK)
    times = {f"[{c}]" for c in ("0:00", "0:04", "0:08")}
    import re

    shown = re.findall(r"\[\d{1,2}:\d{2}(?::\d{2})?\]", answer)
    assert set(shown) <= times
    assert len(shown) <= len(re.findall(r"[“\"「『]", text))
