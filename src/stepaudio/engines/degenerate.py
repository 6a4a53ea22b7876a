"""Spotting degenerate model output: repetition loops and text cut by the token limit.

Small models (and Whisper on repeated speech) can fall into a loop, writing the same
sentence or phrase until ``max_tokens`` stops them; the result reads as an answer but is
not one. These pure functions let every engine's output be checked before it is returned
as a success (the engines retry once, the pipeline refuses what is still bad).

Text is compared as tokens: a word for spaced scripts, one character for CJK (written
without spaces), so loops are found in Chinese as in English.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from stepaudio.text import CJK_WORD, is_cjk

_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = ".!?。！？…"
_CLOSERS = "\"'”’」』）)]】"
_SENTENCES = re.compile(r"[^.!?。！？;；\n]+[.!?。！？;；\n]*")

NGRAM = 10
"""An n-gram this long (tokens) seen ``max_repeats + 1`` times is a loop, not style."""
SHORT_UNIT = 6
"""Units up to this long repeated back to back ("the the the", "哈哈哈") are checked too."""
SHORT_RUN = 8
"""Back-to-back repeats of a short unit that make a loop whatever the unit's length."""
RUN_TOKENS = 24
"""... or fewer repeats (at least 4) covering this many tokens."""


def tokens(text: str) -> list[str]:
    """Lower-case words; each CJK character is a token of its own."""
    out: list[str] = []
    for match in _WORD.finditer(text.lower()):
        word = match.group()
        if any(is_cjk(ch) for ch in word):
            buf = ""
            for ch in word:
                if is_cjk(ch):
                    if buf:
                        out.append(buf)
                        buf = ""
                    out.append(ch)
                else:
                    buf += ch
            if buf:
                out.append(buf)
        else:
            out.append(word)
    return out


def _sentences(text: str) -> list[tuple[str, ...]]:
    found = (tuple(tokens(m.group())) for m in _SENTENCES.finditer(text))
    # Short sentences ("Yes.", "好的。") repeat in real speech and replies.
    return [s for s in found if len(s) >= 4]


def _ngram_repeats(toks: list[str], n: int) -> tuple[int, tuple[str, ...]]:
    """Most occurrences of one n-gram, counted without overlap (a run of one word is
    not counted as many overlapping n-grams of itself)."""
    last_end: dict[tuple[str, ...], int] = {}
    counts: Counter[tuple[str, ...]] = Counter()
    for i in range(len(toks) - n + 1):
        gram = tuple(toks[i : i + n])
        if last_end.get(gram, -1) <= i:
            counts[gram] += 1
            last_end[gram] = i + n
    if not counts:
        return 0, ()
    gram, count = counts.most_common(1)[0]
    return count, gram


def _longest_run(toks: list[str]) -> tuple[int, int, tuple[str, ...]]:
    """(repeats, tokens covered, unit) of the longest back-to-back repetition of a short
    unit."""
    best: tuple[int, int, tuple[str, ...]] = (1, 0, ())
    for unit in range(1, SHORT_UNIT + 1):
        i = 0
        while i + 2 * unit <= len(toks):
            run = 1
            while toks[i + run * unit : i + (run + 1) * unit] == toks[i : i + unit]:
                run += 1
            if run > 1 and run * unit > best[1]:
                best = (run, run * unit, tuple(toks[i : i + unit]))
            i += unit * run if run > 1 else 1
    return best


@dataclass(frozen=True)
class Loop:
    """A repetition found in a text: what repeats and how many times."""

    unit: str
    count: int


def find_loop(text: str, max_repeats: int = 2) -> Loop | None:
    """A repetition loop in ``text``: a sentence or a long phrase written more than
    ``max_repeats`` times, or a short unit repeated back to back far beyond speech's
    habits. ``max_repeats`` is raised by callers whose source repeats itself (a speech
    said three times translates to three times)."""
    toks = tokens(text)
    sentence_counts = Counter(_sentences(text))
    if sentence_counts:
        sentence, count = sentence_counts.most_common(1)[0]
        if count > max_repeats:
            return Loop(_render(sentence), count)
    count, gram = _ngram_repeats(toks, NGRAM)
    if count > max_repeats:
        return Loop(_render(gram), count)
    run, covered, unit = _longest_run(toks)
    if run >= SHORT_RUN or (run >= 4 and covered >= RUN_TOKENS):
        return Loop(_render(unit), run)
    return None


def max_repeats_in(text: str) -> int:
    """How often ``text``'s most repeated sentence or long phrase occurs: a translation
    of it may repeat that often without looping."""
    sentences = Counter(_sentences(text))
    top = max(sentences.values(), default=1)
    return max(top, _ngram_repeats(tokens(text), NGRAM)[0])


def _render(unit: tuple[str, ...]) -> str:
    if all(len(t) == 1 and is_cjk(t) for t in unit):
        return "".join(unit)
    return " ".join(unit)


def ends_complete(text: str) -> bool:
    """Whether ``text`` ends at the end of a sentence; text cut by a token limit
    usually does not."""
    stripped = text.rstrip().rstrip(_CLOSERS)
    if not stripped:
        return False
    return stripped[-1] in _SENTENCE_END


def complete_part(text: str) -> str:
    """``text`` up to its last sentence end (empty if none): what can be returned of an
    answer cut by the token limit without a cut word or sentence."""
    last = max(text.rfind(ch) for ch in _SENTENCE_END)
    if last < 0:
        return ""
    end = last + 1
    while end < len(text) and text[end] in _CLOSERS:
        end += 1
    return text[:end].strip()


def implausible_rate(text: str, seconds: float) -> bool:
    """Whether a transcript holds more speech than ``seconds`` of audio can: fast
    speakers reach about 4 words or 7 CJK characters a second; Whisper's loops on
    repeated speech write several times that."""
    if seconds <= 0:
        return bool(text.strip())
    toks = tokens(text)
    cjk = sum(1 for t in toks if len(t) == 1 and is_cjk(t))
    # A CJK character is about half a word of speaking time.
    words = len(toks) - cjk + cjk / 2
    # Short windows get slack: a clipped word or two at the edges is no loop.
    return words > 6.0 * seconds + 8


_SCRIPTS = {
    "cjk": ("chinese", "mandarin", "cantonese", "japanese", "中文", "汉语", "zh", "ja", "yue"),
    "latin": (
        "english", "french", "spanish", "german", "italian", "portuguese", "dutch",
        "en", "fr", "es", "de", "it", "pt", "nl", "英语", "英文",
    ),
    "cyrillic": ("russian", "ukrainian", "ru", "uk"),
}  # fmt: skip


def _script_of(ch: str) -> str | None:
    if is_cjk(ch):
        return "cjk"
    if ch.isascii() or "\u00c0" <= ch <= "\u024f":
        return "latin"
    if "\u0400" <= ch <= "\u04ff":
        return "cyrillic"
    return None


def in_target_script(text: str, target_lang: str) -> bool:
    """Whether most letters of ``text`` are in the script of ``target_lang`` (for the
    languages we know the script of; others are not judged): a translation into Chinese
    that came back in English is no translation. Digits, names and punctuation aside."""
    lang = target_lang.strip().lower()
    script = next(
        (s for s, names in _SCRIPTS.items() if lang in names or lang.split("-")[0] in names),
        None,
    )
    if script is None:
        return True
    letters = [_script_of(ch) for ch in text if ch.isalpha()]
    if not letters:
        return False
    share = sum(1 for s in letters if s == script) / len(letters)
    # Chinese keeps Latin names and acronyms ("JFK", "NASA"): a majority suffices.
    return share >= (0.5 if script == "cjk" else 0.8)


def untranslated_cjk(text: str, target_lang: str) -> str:
    """The CJK characters left in a translation into a language written without them
    (English, Russian, ...): such a language spells Chinese names out, so a character left
    is a word the model did not translate (a full-width comma is not). Empty for CJK targets
    and unknown languages."""
    lang = target_lang.strip().lower()
    known = [s for s, names in _SCRIPTS.items() if lang in names or lang.split("-")[0] in names]
    if not known or known[0] == "cjk":
        return ""
    return "".join(CJK_WORD.findall(text))
