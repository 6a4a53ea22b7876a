"""Speaker turns from labelled windows, and speakers onto transcript segments by time.

A transcript segment may hold two voices (Whisper does not cut at a change of speaker
when the pause is short): where its words have times, it is split at the change; where
not, it gets the speaker who talks most within it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stepaudio.engines.base import Segment, Word
from stepaudio.text import join_texts


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: str
    score: float | None = None
    """How alike the speaker's voice and the known voice it was named after (cosine);
    None for a speaker given a letter."""


def label(index: int) -> str:
    """``A``, ``B``, ... ``Z``, ``AA``, ``AB``: OpenAI's labels for unnamed speakers."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def turns(spans: list[tuple[float, float]], speakers: list[str], gap: float = 0.5) -> list[Turn]:
    """Consecutive spans of one speaker, closer than ``gap`` seconds, as one turn."""
    out: list[Turn] = []
    for (a, b), who in sorted(zip(spans, speakers, strict=True)):
        if out and out[-1].speaker == who and a - out[-1].end <= gap:
            out[-1] = Turn(out[-1].start, max(out[-1].end, b), who)
        else:
            out.append(Turn(a, b, who))
    return out


def speaker_at(start: float, end: float, timeline: list[Turn]) -> str | None:
    """Who talks most in ``[start, end]``; the nearest turn's speaker if nobody does
    (the voice detector missed a quiet word), None without turns."""
    if not timeline:
        return None
    talk: dict[str, float] = {}
    for t in timeline:
        overlap = min(end, t.end) - max(start, t.start)
        if overlap > 0:
            talk[t.speaker] = talk.get(t.speaker, 0.0) + overlap
    if talk:
        return max(talk, key=lambda k: talk[k])
    mid = (start + end) / 2
    return min(timeline, key=lambda t: max(t.start - mid, mid - t.end, 0.0)).speaker


def _smoothed(names: list[str]) -> list[str]:
    """A single word between two words of another speaker is theirs: one word is too
    short a turn to trust a 1.5-s voice print with."""
    out = list(names)
    for i in range(1, len(out) - 1):
        if out[i - 1] == out[i + 1] != out[i]:
            out[i] = out[i - 1]
    return out


def _split(segment: Segment, words: list[Word], names: list[str]) -> list[Segment]:
    pieces: list[Segment] = []
    first = 0
    for i in range(1, len(words) + 1):
        if i == len(words) or names[i] != names[first]:
            part = words[first:i]
            pieces.append(
                replace(
                    segment,
                    start=part[0].start if first else segment.start,
                    end=part[-1].end if i < len(words) else segment.end,
                    text=join_texts(w.word for w in part),
                    # The token ids belonged to the whole segment.
                    tokens=None,
                    words=part,
                    speaker=names[first],
                )
            )
            first = i
    return pieces


def assign(segments: list[Segment], timeline: list[Turn]) -> list[Segment]:
    """Every segment with its ``speaker``; segments with timed words split where the
    speaker changes."""
    out: list[Segment] = []
    for s in segments:
        if s.words:
            names = [speaker_at(w.start, w.end, timeline) or "A" for w in s.words]
            out.extend(_split(s, s.words, _smoothed(names)))
        else:
            out.append(replace(s, speaker=speaker_at(s.start, s.end, timeline) or "A"))
    scores = {t.speaker: t.score for t in timeline if t.score is not None}
    return [replace(s, speaker_confidence=scores.get(s.speaker or "")) for s in out]
