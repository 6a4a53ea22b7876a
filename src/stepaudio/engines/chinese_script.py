"""One Chinese script per transcript.

Whisper has a single language token for Chinese and writes Mandarin in either script,
switching within a recording (律師 beside 律师 in one clip): a reader gets a mix. The
request's ``language`` says which script it wants: ``zh``, ``zh-CN``, ``zh-Hans``, ``zh-SG``
(Simplified, the default for Chinese), ``zh-TW``, ``zh-Hant`` (Traditional, Taiwan's
forms) or ``zh-HK``, ``zh-MO`` (Traditional, Hong Kong's). Whisper itself is told ``zh``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

import zhconv  # type: ignore[import-untyped]

from stepaudio.engines.base import ModelOutput, Segment
from stepaudio.text import join_texts

SIMPLIFIED = "zh-cn"
_SCRIPTS = {
    "zh": SIMPLIFIED,
    "zh-cn": SIMPLIFIED,
    "zh-hans": SIMPLIFIED,
    "zh-sg": "zh-sg",
    "zh-tw": "zh-tw",
    "zh-hant": "zh-tw",
    "zh-hk": "zh-hk",
    "zh-mo": "zh-hk",
}


# Whisper punctuates Mandarin with ASCII marks ("淹井,大块"); Chinese text uses the
# full-width ones. Only a mark right after a Han character changes: "4.5", "AI, 模型" stay.
_AFTER_HAN = re.compile(r"(?<=[\u3400-\u9fff])(?:([,?!:;]) ?|\.(?: |$))")
_FULL_WIDTH = {",": "，", "?": "？", "!": "！", ":": "：", ";": "；", None: "。"}


def _chinese_punctuation(text: str) -> str:
    return _AFTER_HAN.sub(lambda m: _FULL_WIDTH[m.group(1)], text)


def _written(text: str, script: str) -> str:
    return _chinese_punctuation(zhconv.convert(text, script))


def split_language(language: str | None) -> tuple[str | None, str | None]:
    """A request's ``language`` as (Whisper's code, the Chinese script asked for, if any).

    Codes other than Chinese's pass as they are (Whisper refuses the ones it lacks)."""
    if language is None:
        return None, None
    key = language.strip().lower().replace("_", "-")
    if key in _SCRIPTS:
        return "zh", _SCRIPTS[key]
    return language, None


def in_script(segments: Iterable[Segment], script: str) -> list[Segment]:
    """The segments, their text and words written in ``script`` (a zhconv locale), with
    Chinese punctuation."""
    out = []
    for s in segments:
        words = s.words
        if words is not None:
            words = [replace(w, word=_written(w.word, script)) for w in words]
        out.append(replace(s, text=_written(s.text, script), words=words))
    return out


_HAN = "\u3400-\u9fff"
_PAUSE = re.compile(rf"(?<=[{_HAN}])\s+(?=[{_HAN}])")


def punctuated_text(text: str) -> str:
    """Mandarin as Whisper base often writes it, phrases parted by spaces and no marks
    ("广州市 佛地产 中间协会分析"), written as Chinese is: a comma where it paused, a
    full stop where the text (a segment: a sentence, or a stretch of speech) ends."""
    text = _PAUSE.sub("，", text.strip())
    if text and re.match(rf"[{_HAN}]", text[-1]):
        text += "。"
    return text


def punctuated(segment: Segment) -> Segment:
    """The segment with ``punctuated_text``."""
    text = punctuated_text(segment.text)
    return replace(segment, text=text) if text != segment.text else segment


def _chinese(language: str | None, text: str) -> bool:
    """Mandarin: as the engine says, or where it says nothing, mostly Han characters."""
    if language is not None:
        return language == "zh"
    han = len(re.findall(rf"[{_HAN}]", text))
    return han > 0 and han >= sum(c.isalpha() for c in text) / 2


def punctuated_output(out: ModelOutput) -> ModelOutput:
    """A window's Mandarin punctuated (its segments, its text, a translation's source),
    whichever engine heard it; other languages as they are."""
    chinese = [_chinese(s.language or out.language, s.text) for s in out.segments]
    segments = [punctuated(s) if zh else s for s, zh in zip(out.segments, chinese, strict=True)]
    text = join_texts(s.text for s in segments) if segments != out.segments else out.text
    if not segments and out.source is None and _chinese(out.language, text):
        text = punctuated_text(text)  # heard, in one piece
    source = out.source
    if source and _chinese(out.language, source):
        source = punctuated_text(source)
    if (segments, text, source) == (out.segments, out.text, out.source):
        return out
    return replace(out, segments=segments, text=text, source=source)
