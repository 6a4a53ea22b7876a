"""Reduce many texts to one answer with text-only calls (map-reduce, hierarchical).

Used for summaries and answers over long transcripts or over per-window results: texts
that fit one call go in one call; otherwise they are packed into chunks that fit, each
chunk is condensed, and the condensed texts are reduced again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stepaudio.engines import prompts
from stepaudio.engines.base import Engine, ModelOutput, TextJob, Usage
from stepaudio.params import ProcessParams
from stepaudio.pipeline import output_guard

_MAX_LEVELS = 6


@dataclass(frozen=True)
class ReduceTask:
    """How to condense a chunk (map) and how to produce the final text (reduce)."""

    condense: Callable[[str], str]
    final: Callable[[str, bool], str]
    system: str = prompts.TEXT_SYSTEM


def summary_task(instruction: str | None, zh: bool = False) -> ReduceTask:
    """``zh``: the recording is Chinese, so are the prompts (and the summary)."""
    return ReduceTask(
        condense=lambda text: prompts.summarize_prompt(text, zh=zh),
        final=lambda text, partial: prompts.summarize_prompt(text, instruction, partial, zh),
        system=prompts.text_system(zh),
    )


def answer_task(question: str, zh: bool = False) -> ReduceTask:
    return ReduceTask(
        condense=lambda text: prompts.notes_prompt(text, question, zh),
        final=lambda text, partial: prompts.answer_prompt(text, question, partial, zh),
        system=prompts.text_system(zh),
    )


def pack(texts: Sequence[str], budget: int) -> list[str]:
    """Group texts, in order, into chunks of at most ``budget`` characters."""
    chunks: list[str] = []
    current = ""
    for text in texts:
        pieces = [text[i : i + budget] for i in range(0, len(text), budget)] or [""]
        for piece in pieces:
            if current and len(current) + 1 + len(piece) > budget:
                chunks.append(current)
                current = ""
            current = f"{current}\n{piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks


async def reduce_texts(
    engine: Engine,
    texts: Sequence[str],
    task: ReduceTask,
    params: ProcessParams,
    *,
    partial: bool = False,
    parallel: int = 4,
) -> ModelOutput:
    """One text from many; ``partial`` says the texts are already condensed results."""
    budget = engine.text_budget_chars()
    usage = Usage()
    texts = [t for t in texts if t.strip()]
    gate = asyncio.Semaphore(parallel)

    async def call(prompt: str) -> ModelOutput:
        async with gate:
            out = await output_guard.complete(engine, TextJob(task.system, prompt, params))
        usage.add(out.usage)
        return out

    for _ in range(_MAX_LEVELS):
        joined = "\n".join(texts)
        if len(joined) <= budget:
            break
        condensed = await asyncio.gather(*(call(task.condense(c)) for c in pack(texts, budget)))
        texts = [c.text for c in condensed if c.text.strip()]
        partial = True
    final = await call(task.final("\n".join(texts)[:budget], partial))
    final.usage = usage
    return final
