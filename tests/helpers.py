"""Shared test helpers: the clips in tests/data, their references, and error rates."""

from __future__ import annotations

import json
import re
import string
from functools import cache
from pathlib import Path

import jiwer
import zhconv

from stepaudio.engines.degenerate import in_target_script
from stepaudio.text import CJK_WORD

DATA = Path(__file__).parent / "data"


def clip(name: str) -> Path:
    """A recording in tests/data, by its path there (``en/jfk.flac``)."""
    path = DATA / name
    if not path.exists():
        raise FileNotFoundError(path)
    return path


@cache
def manifest() -> list[dict]:
    return json.loads((DATA / "manifest.json").read_text())


def referenced(lang: str) -> list[dict]:
    """Clips of one language that have a reference transcript."""
    return [e for e in manifest() if e["lang"] == lang and e.get("ref")]


def reference(entry: dict) -> str:
    return (DATA / entry["ref"]).read_text(encoding="utf-8").strip()


_PUNCT = re.compile(f"[{re.escape(string.punctuation)}“”‘’—–…]")


def normalize_en(text: str) -> str:
    text = text.lower().replace("’", "'")
    text = _PUNCT.sub(" ", text)
    return " ".join(text.split())


_NOT_HAN = re.compile(r"[^\u4e00-\u9fff0-9a-zA-Z]")


def normalize_zh(text: str) -> str:
    return _NOT_HAN.sub("", zhconv.convert(text, "zh-cn"))


def wer(refs: list[str], hyps: list[str]) -> float:
    return jiwer.wer([normalize_en(r) for r in refs], [normalize_en(h) for h in hyps])


def cer(refs: list[str], hyps: list[str]) -> float:
    return jiwer.cer([normalize_zh(r) for r in refs], [normalize_zh(h) for h in hyps])


def is_english(text: str) -> bool:
    """Written in English: Latin letters, no CJK word (typographic quotes and dashes, which
    the text model writes as often as ASCII ones, allowed)."""
    return bool(text.strip()) and in_target_script(text, "English") and not CJK_WORD.search(text)
