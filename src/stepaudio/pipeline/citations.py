"""An answer's quotes checked against the transcript: each quote that the transcript
holds gets the real time of the segment it is in (and comes back as a citation); a quote
that matches nothing keeps its words but loses any time; a time the model wrote that no
matched quote stands behind is removed. A model copies the time of its prompt's example,
or invents one; the reader must never be shown a time that is not the recording's.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

from stepaudio.engines.base import Segment
from stepaudio.text import clock

_TIME = r"\[\d{1,2}:\d{2}(?::\d{2})?\]"
QUOTED = re.compile(rf"(?:({_TIME})\s*)?([“\"「『])([^”\"」』\n]{{2,600}})([”\"」』])")
TIME = re.compile(rf"{_TIME}\s?")
MIN_RATIO = 0.8
"""How alike a quote and the transcript's words must be (difflib's ratio on letters and
digits only): a model quotes loosely (a dropped "and", another comma), never far off."""


@dataclass(frozen=True)
class Citation:
    start: float
    end: float
    text: str
    """The segment's words, as transcribed (the quote may be a part of them)."""
    speaker: str | None = None


def _plain(text: str) -> str:
    """Letters and digits only, lower case: what a quote and a segment are compared on."""
    return "".join(c for c in unicodedata.normalize("NFKC", text).lower() if c.isalnum())


def find(quote: str, segments: list[Segment]) -> list[Segment]:
    """The segments (one, or the fewest consecutive ones) that hold ``quote``."""
    wanted = _plain(quote)
    if len(wanted) < 2:
        return []
    plain = [_plain(s.text) for s in segments]
    runs = [(i, i + n) for n in (1, 2, 3) for i in range(len(segments) - n + 1)]
    for a, b in runs:
        if wanted in "".join(plain[a:b]):
            return segments[a:b]
    best, where = 0.0, (0, 0)
    for a, b in runs:
        joined = "".join(plain[a:b])
        if len(joined) < len(wanted) // 2:
            continue
        matcher = difflib.SequenceMatcher(None, wanted, joined, autojunk=False)
        # How much of the quote is found, in order, in these segments.
        found = sum(block.size for block in matcher.get_matching_blocks()) / len(wanted)
        if found > best:
            best, where = found, (a, b)
    return segments[where[0] : where[1]] if best >= MIN_RATIO else []


def ground(answer: str, segments: list[Segment]) -> tuple[str, list[Citation], list[str]]:
    """``answer`` with real times before the quotes the transcript holds and no other
    time, the citations, and the quotes that matched nothing."""
    citations: list[Citation] = []
    unmatched: list[str] = []
    marks: list[str] = []

    def cite(match: re.Match[str]) -> str:
        _, opening, quote, closing = match.groups()
        held = find(quote, segments)
        if not held:
            unmatched.append(quote)
            return f"{opening}{quote}{closing}"
        first, last = held[0], held[-1]
        text = " ".join(s.text.strip() for s in held)
        citation = Citation(round(first.start, 3), round(last.end, 3), text, first.speaker)
        if citation not in citations:
            citations.append(citation)
        # A placeholder, so the sweep of unverified times below leaves ours alone.
        marks.append(f"[{clock(first.start)}]")
        return f"\x00{len(marks) - 1}\x00 {opening}{quote}{closing}"

    cited = QUOTED.sub(cite, answer)
    swept = TIME.sub("", cited)
    restored = re.sub(r"\x00(\d+)\x00", lambda m: marks[int(m.group(1))], swept)
    return restored, citations, unmatched
