"""Word times as clients get them: one time for every word, in order, inside its segment.

Whisper's word times come from cross-attention and are mostly good, but not guaranteed
tidy: a word may start before the previous one ended, end after its segment, or (numbers,
symbols) come back with no duration. Engines without word times (Step-Audio, the cascade,
text-only windows) leave ``words`` as None, and that is reported, never made up.
"""

from __future__ import annotations

import math
from dataclasses import replace

from stepaudio.engines.base import Segment, Word

NO_WORD_TIMES = (
    "word_timestamps: the engine gave no word times for {n} of {total} segments; "
    "their words are left out rather than guessed"
)


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _spread(text: str, start: float, end: float) -> list[Word]:
    """A Whisper segment whose words came back empty: its words share its time by length
    (the segment's bounds are measured; only the split inside it is estimated)."""
    tokens = text.split()
    total = sum(len(t) for t in tokens) or 1
    words, at = [], start
    for token in tokens:
        step = (end - start) * len(token) / total
        words.append(Word(token, round(at, 3), round(at + step, 3)))
        at += step
    return words


def _interpolated(words: list[Word], start: float, end: float) -> list[Word]:
    """Words with a missing or non-finite time get one between their timed neighbours."""
    out = list(words)
    i = 0
    while i < len(out):
        if _known(out[i].start) and _known(out[i].end):
            i += 1
            continue
        j = i
        while j < len(out) and not (_known(out[j].start) and _known(out[j].end)):
            j += 1
        left = out[i - 1].end if i > 0 else start
        right = out[j].start if j < len(out) else end
        step = max(0.0, right - left) / (j - i)
        for k in range(i, j):
            a = left + step * (k - i)
            out[k] = replace(out[k], start=round(a, 3), end=round(a + step, 3))
        i = j
    return out


def settle(segment: Segment) -> Segment:
    """``segment`` with its words timed, ordered and inside its bounds; unchanged when it
    has no words (None)."""
    if segment.words is None:
        return segment
    if not segment.words:
        return replace(segment, words=_spread(segment.text, segment.start, segment.end))
    words = _interpolated(segment.words, segment.start, segment.end)
    tidy: list[Word] = []
    floor = segment.start
    for w in words:
        start = min(max(w.start, floor), segment.end)
        end = min(max(w.end, start), segment.end)
        tidy.append(replace(w, start=start, end=end))
        floor = end
    return replace(segment, words=tidy)


def finish(segments: list[Segment], *, wanted: bool) -> tuple[list[Segment], list[str]]:
    """The segments as the result carries them, and any warning for the client.

    Words are kept only when ``wanted`` (diarization may have asked the engine for them
    to split segments at speaker changes)."""
    if not wanted:
        return [replace(s, words=None) if s.words is not None else s for s in segments], []
    settled = [settle(s) for s in segments]
    missing = sum(1 for s in settled if s.words is None)
    warnings = [NO_WORD_TIMES.format(n=missing, total=len(settled))] if missing else []
    return settled, warnings
