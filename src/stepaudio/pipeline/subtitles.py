"""Subtitle cues people can read, cut the way broadcasters' guidelines ask (the BBC's and
Netflix's timed-text style guides): at most 42 characters a line and two lines a cue for
Latin scripts, 16 characters a line for Chinese and Japanese, at most 7 s a cue, lines
broken between words (a CJK character is a word), and a new cue where the speaker
changes (each segment has one speaker, and a cue never spans two segments).

Where the segment has word times (``word_timestamps``) a cue starts and ends with its
words; without them the segment's time is shared out over its characters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from stepaudio.pipeline.result import SegmentOut
from stepaudio.text import CJK_WORD, is_cjk

LATIN_LINE = 42
CJK_LINE = 16
MAX_LINES = 2
MAX_CUE_S = 7.0


@dataclass
class Cue:
    start: float
    end: float
    lines: list[str]
    speaker: str | None


@dataclass
class _Token:
    text: str
    start: float
    end: float


def _mostly_cjk(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(is_cjk(c) for c in letters) * 2 > len(letters)


def _split(text: str) -> list[str]:
    """Words, and each CJK character on its own (punctuation stays with what it follows)."""
    out: list[str] = []
    for word in text.split():
        pos = 0
        for run in CJK_WORD.finditer(word):
            if run.start() > pos:
                out.append(word[pos : run.start()])
            out.extend(run.group())
            pos = run.end()
        if pos < len(word):
            rest = word[pos:]
            if out and not rest[0].isalnum() and is_cjk(out[-1][-1]):
                out[-1] += rest  # 。，after a character stays with it
            else:
                out.append(rest)
    return out


def _tokens(segment: SegmentOut) -> list[_Token]:
    if segment.words:
        words = [w for w in segment.words if w.word.strip()]
        tokens = []
        for w in words:
            parts = _split(w.word)
            step = (w.end - w.start) / max(1, len(parts))
            for i, part in enumerate(parts):
                tokens.append(_Token(part, w.start + i * step, w.start + (i + 1) * step))
        if tokens:
            return tokens
    parts = _split(segment.text)
    total = sum(len(p) for p in parts) or 1
    span = max(0.0, segment.end - segment.start)
    tokens, at = [], segment.start
    for part in parts:
        length = span * len(part) / total
        tokens.append(_Token(part, at, at + length))
        at += length
    return tokens


def _lines(words: list[str], width: int, cjk: bool) -> list[str]:
    """Greedy line breaking between words; a word longer than a line has one to itself."""
    sep = "" if cjk else " "
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + len(sep) + len(word) <= width:
            lines[-1] += sep + word
        else:
            lines.append(word)
    return lines


def _segment_cues(segment: SegmentOut, prefix: str) -> Iterator[Cue]:
    cjk = _mostly_cjk(segment.text)
    width = CJK_LINE if cjk else LATIN_LINE
    tokens = _tokens(segment)
    first = True
    while tokens:
        lead = [prefix] if first and prefix else []
        taken = 1
        while taken < len(tokens):
            words = lead + [t.text for t in tokens[: taken + 1]]
            if len(_lines(words, width, cjk)) > MAX_LINES:
                break
            if tokens[taken].end - tokens[0].start > MAX_CUE_S:
                break
            taken += 1
        cue, tokens = tokens[:taken], tokens[taken:]
        end = segment.end if not tokens else cue[-1].end
        start = segment.start if first else cue[0].start
        # A word said slowly is still off the screen after 7 s.
        end = min(max(end, start), start + MAX_CUE_S)
        yield Cue(
            round(start, 3),
            round(end, 3),
            _lines(lead + [t.text for t in cue], width, cjk),
            segment.speaker,
        )
        first = False


def cues(segments: list[SegmentOut], *, prefix: bool = False) -> list[Cue]:
    """The segments as readable cues. ``prefix``: the first cue of a speaker's segment
    starts with ``Speaker A:`` (SubRip has no voice tags); its length counts."""
    from stepaudio.pipeline.formats import speaker_name

    out: list[Cue] = []
    for segment in segments:
        if not segment.text.strip():
            continue
        lead = f"{speaker_name(segment.speaker)}:" if prefix and segment.speaker else ""
        out.extend(_segment_cues(segment, lead))
    return out
