"""Append-only text from hypotheses that change: what may be shown while a turn is still
spoken, and how its final text continues what was shown.

A partial transcript of a growing turn changes at its end as more audio arrives. Shown
text cannot be taken back (OpenAI's ``delta`` events append), so only what two successive
hypotheses agree on is shown (the "local agreement" of streaming Whisper), cut at a word
boundary; the final text is the shown text plus the rest of the final hypothesis.
"""

from __future__ import annotations

import re

# A CJK character is a word of its own; other words run to the next space.
_CJK = "\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef"
_TOKEN = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+\s*|\s+")
_CJK_CHAR = re.compile(rf"[{_CJK}]")


def tokens(text: str) -> list[str]:
    """``text`` as words, each with the spaces after it; joined they give ``text``."""
    return _TOKEN.findall(text)


def agreed(previous: str, current: str) -> str:
    """The whole words at the start of both hypotheses."""
    out: list[str] = []
    for a, b in zip(tokens(previous), tokens(current), strict=False):
        if a.strip() != b.strip():
            break
        out.append(b)
    # The last agreed word may still grow ("the" → "there") unless a space closed it.
    if out and out[-1] == out[-1].rstrip() and len(tokens(current)) == len(out):
        out.pop()
    return "".join(out)


def continuation(shown: str, final: str) -> str:
    """What to append to ``shown`` so that it ends as ``final`` says: the final words
    after as many words as were shown (the shown ones stand even where the final
    hypothesis spelt them otherwise)."""
    if final.startswith(shown):
        return final[len(shown) :]
    rest = "".join(tokens(final)[len(tokens(shown)) :])
    if shown and rest and not shown[-1].isspace() and _needs_space(shown[-1], rest[0]):
        rest = " " + rest
    return rest


def _needs_space(left: str, right: str) -> bool:
    return not (_CJK_CHAR.match(left) or _CJK_CHAR.match(right) or right.isspace())
