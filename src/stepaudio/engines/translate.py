"""Translating a transcript with a text model, piece by piece.

A whole window's transcript in one call would outgrow the answer's token cap (and a
small model drifts or loops over long inputs), so segments are translated in bounded
groups, each group's translation kept with the group's times. Each piece is checked: no
loop, not cut by the token cap, in the target language's script, no source word left
untranslated (such a word is translated alone and put in its place). A bad piece is
tried again with steadier decoding, then in halves; one still bad is an error, never a
translation with a hole or a loop in it. A piece far shorter than its source (a small
model merges a repeated sentence into one) is tried again in halves too, and kept as
it comes if it is a single segment: terse is no error.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from stepaudio import languages
from stepaudio.engines import prompts
from stepaudio.engines.base import ModelOutput, Segment, TextJob, Usage
from stepaudio.engines.degenerate import (
    find_loop,
    in_target_script,
    max_repeats_in,
    untranslated_cjk,
)
from stepaudio.errors import DegenerateOutput
from stepaudio.params import ProcessParams
from stepaudio.text import CJK_WORD, join_texts

GROUP_CHARS = 400
"""Source characters per call: a few sentences, well within the answer's token cap."""
RETRY_PENALTY = 1.2
WORDS_PER_CJK = 0.65
"""English words per Chinese character in a faithful translation (~650 per 1,000)."""
SHORT_RATIO = 0.65
"""A translation under this share of its expected length lost part of its source."""
_SENTENCE = re.compile(r"[^。！？!?.]+[。！？!?.]*")

Complete = Callable[[TextJob], Awaitable[ModelOutput]]


def groups(segments: list[Segment], budget: int = GROUP_CHARS) -> list[list[Segment]]:
    """Consecutive segments packed into groups of about ``budget`` characters (a single
    longer segment is a group of its own)."""
    out: list[list[Segment]] = []
    size = 0
    for segment in segments:
        if out and size + len(segment.text) <= budget:
            out[-1].append(segment)
            size += len(segment.text)
        else:
            out.append([segment])
            size = len(segment.text)
    return out


def _units(text: str) -> float:
    """Length of ``text`` in words, a CJK character counted as the words it translates to."""
    cjk = sum(len(run) for run in CJK_WORD.findall(text))
    rest = CJK_WORD.sub(" ", text).split()
    return cjk * WORDS_PER_CJK + sum(1 for w in rest if any(c.isalnum() for c in w))


def too_short(source: str, translation: str) -> bool:
    """Whether ``translation`` is far shorter than a faithful one of ``source``."""
    return _units(translation) < SHORT_RATIO * _units(source)


def sentences(text: str) -> list[str]:
    """``text`` cut after each sentence's closing mark."""
    return [m.strip() for m in _SENTENCE.findall(text) if m.strip()]


def _problem(source: str, out: ModelOutput, target_lang: str) -> str | None:
    if out.truncated:
        return "cut by the token limit"
    if not out.text.strip():
        return "empty"
    loop = find_loop(out.text, max(2, max_repeats_in(source)))
    if loop is not None:
        return f"'{loop.unit[:60]}' repeated {loop.count} times"
    if not in_target_script(out.text, target_lang):
        return f"not written in {target_lang}"
    left = untranslated_cjk(out.text, target_lang)
    if left:
        return f"'{left[:20]}' left untranslated"
    return None


class Translator:
    """Translates timed segments with ``complete`` (an engine's text call)."""

    def __init__(self, complete: Complete):
        self._complete = complete

    async def translate(
        self, segments: list[Segment], params: ProcessParams, usage: Usage
    ) -> list[Segment]:
        """One segment per group: the group's times, its translation."""
        out: list[Segment] = []
        for group in groups(segments):
            out.extend(await self._group(group, params, usage, retried=False))
        return out

    async def _call(self, source: str, params: ProcessParams, usage: Usage) -> ModelOutput:
        target = params.target_lang
        job = TextJob(
            prompts.translate_system(target),
            prompts.translate_prompt(source, target),
            params,
            # Room for the translation, not for a loop: Chinese takes about a token a
            # character, English about a token per 4 characters.
            max_tokens=max(64, 2 * len(source)),
        )
        result = await self._complete(job)
        usage.add(result.usage)
        return result

    async def _fill_in(self, out: ModelOutput, params: ProcessParams, usage: Usage) -> ModelOutput:
        """``out`` with each run of source characters it kept translated on its own (a
        small model sometimes leaves a word as it was)."""
        text = out.text
        for run in dict.fromkeys(CJK_WORD.findall(text)):
            word = await self._call(run, params, usage)
            if _problem(run, word, params.target_lang) is None:
                text = text.replace(run, f" {word.text.strip().rstrip('.')} ")
        return ModelOutput(" ".join(text.split()), out.thinking, language=out.language)

    async def _attempt(
        self, source: str, params: ProcessParams, usage: Usage
    ) -> tuple[ModelOutput, str | None]:
        result = await self._call(source, params, usage)
        problem = _problem(source, result, params.target_lang)
        if problem is not None and problem.endswith("left untranslated"):
            result = await self._fill_in(result, params, usage)
            problem = _problem(source, result, params.target_lang)
        return result, problem

    async def _group(
        self, group: list[Segment], params: ProcessParams, usage: Usage, *, retried: bool
    ) -> list[Segment]:
        source = join_texts(s.text for s in group)
        result, problem = await self._attempt(source, params, usage)
        short = problem is None and too_short(source, result.text)
        if (problem is not None or short) and not retried:
            steady = params.model_copy(
                update={
                    "temperature": 0.0,
                    "repetition_penalty": max(params.repetition_penalty, RETRY_PENALTY),
                }
            )
            if len(group) > 1:
                half = len(group) // 2
                return [
                    *await self._group(group[:half], steady, usage, retried=True),
                    *await self._group(group[half:], steady, usage, retried=True),
                ]
            parts = sentences(source)
            if len(parts) > 1:  # one segment of several sentences: one at a time
                texts = [await self._checked(part, group, steady, usage) for part in parts]
                return [_written(group, join_texts(texts), params)]
            first = result
            result, problem = await self._attempt(source, steady, usage)
            if problem is not None and short:  # the first was terse, not broken
                result, problem = first, None
        if problem is not None:
            raise _unusable(group, problem)
        return [_written(group, result.text.strip(), params)]

    async def _checked(
        self, source: str, group: list[Segment], params: ProcessParams, usage: Usage
    ) -> str:
        result, problem = await self._attempt(source, params, usage)
        if problem is not None:
            raise _unusable(group, problem)
        return result.text.strip()


def _unusable(group: list[Segment], problem: str) -> DegenerateOutput:
    return DegenerateOutput(
        f"The translation of {group[0].start:.1f}-{group[-1].end:.1f} s came out "
        f"unusable ({problem}), also on a steadier retry.",
        param="target_lang" if problem.startswith("not written") else None,
    )


def _written(group: list[Segment], text: str, params: ProcessParams) -> Segment:
    """The group's translation over the group's times, in the target language."""
    target = languages.find(params.target_lang)
    code = target.code if target else None
    return Segment(group[0].start, group[-1].end, text, language=code)
