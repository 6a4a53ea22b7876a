"""Subtitle cues by the broadcasters' rules: lines, lines per cue, seconds per cue,
breaks between words, a new cue for a new speaker; every word kept, in order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stepaudio.pipeline.result import SegmentOut, WordOut
from stepaudio.pipeline.subtitles import CJK_LINE, LATIN_LINE, MAX_CUE_S, MAX_LINES, cues

LONG = (
    "And so my fellow Americans ask not what your country can do for you ask what you can "
    "do for your country. My fellow citizens of the world ask not what America will do for "
    "you but what together we can do for the freedom of man."
)


def segment(text: str, start: float, end: float, speaker: str | None = None, words=None):
    return SegmentOut(start=start, end=end, text=text, speaker=speaker, words=words)


def check(cue_list, segments, width: int) -> None:
    for cue in cue_list:
        assert 1 <= len(cue.lines) <= MAX_LINES, cue
        assert all(len(line) <= width or " " not in line for line in cue.lines), cue
        assert cue.end - cue.start <= MAX_CUE_S + 1e-6, cue
        assert cue.start <= cue.end
    assert [c.start for c in cue_list] == sorted(c.start for c in cue_list)


def test_a_long_sentence_becomes_short_lines_and_short_cues():
    segs = [segment(LONG, 0.0, 20.0)]
    out = cues(segs)
    check(out, segs, LATIN_LINE)
    assert len(out) >= 3
    assert " ".join(" ".join(c.lines) for c in out).split() == LONG.split()
    assert out[0].start == 0.0 and out[-1].end == 20.0


def test_chinese_lines_are_sixteen_characters_at_most():
    text = "我们今天讨论的是明年的预算安排，以及新产品的上市时间，还有市场部门提出的三个问题。" * 2
    out = cues([segment(text, 0.0, 12.0)])
    check(out, [], CJK_LINE)
    assert all(len(line) <= CJK_LINE for c in out for line in c.lines)
    assert "".join("".join(c.lines) for c in out) == text


def test_a_new_speaker_starts_a_new_cue_and_is_named_in_srt():
    segs = [segment("Hello there.", 0.0, 1.0, "A"), segment("Hi.", 1.0, 1.6, "B")]
    out = cues(segs, prefix=True)
    assert [c.speaker for c in out] == ["A", "B"]
    assert out[0].lines == ["Speaker A: Hello there."] and out[1].lines == ["Speaker B: Hi."]


def test_word_times_decide_where_a_cue_ends():
    words = [WordOut(word=f" w{i}", start=i * 0.9, end=i * 0.9 + 0.8) for i in range(12)]
    text = " ".join(w.word.strip() for w in words)
    out = cues([segment(text, 0.0, 11.0, words=words)])
    assert len(out) == 2
    shown = len(" ".join(out[0].lines).split())
    # The second cue starts when its first word is said, not at a share of the segment.
    assert out[1].start == round(words[shown].start, 3)
    assert out[0].end == round(words[shown - 1].end, 3)
    check(out, [], LATIN_LINE)


words_st = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12), min_size=1, max_size=80
)


@settings(max_examples=150, deadline=None)
@given(words=words_st, seconds=st.floats(min_value=0.2, max_value=60))
def test_any_segment_keeps_its_words_and_the_rules(words: list[str], seconds: float):
    text = " ".join(words)
    out = cues([segment(text, 5.0, 5.0 + seconds, "A")], prefix=True)
    check(out, [], LATIN_LINE)
    said = " ".join(" ".join(c.lines) for c in out).split()
    assert said == ["Speaker", "A:", *words]
    assert out[0].start == 5.0 and out[-1].end <= 5.0 + seconds + 1e-3
