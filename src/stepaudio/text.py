"""Text helpers shared by the engines and the pipeline (no model, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Iterable

CJK_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]+")
"""A run of CJK letters (kana, ideographs): a word or words, where CJK punctuation and
full-width forms are not."""


def is_cjk(ch: str) -> bool:
    """Whether a character is written without spaces around it (CJK ideographs, kana,
    full-width forms): such pieces of transcript are joined directly."""
    return "\u3000" <= ch <= "\u9fff" or "\uf900" <= ch <= "\uffef"


def join_texts(texts: Iterable[str]) -> str:
    """Join pieces of transcript: with a space, except between CJK characters."""
    out = ""
    for piece in texts:
        piece = piece.strip()
        if not piece:
            continue
        if out and not (is_cjk(out[-1]) and is_cjk(piece[0])):
            out += " "
        out += piece
    return out


def clock(seconds: float) -> str:
    """``M:SS`` (``H:MM:SS`` past an hour): a time as people write it in a sentence."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
