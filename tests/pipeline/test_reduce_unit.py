"""pipeline/reduce.py with a plain function as the model: packing, map-reduce levels,
usage totals. No server, no model, milliseconds."""

from __future__ import annotations

import asyncio

from stepaudio.engines import prompts
from stepaudio.params import ProcessParams
from stepaudio.pipeline.reduce import answer_task, pack, reduce_texts, summary_task
from tests.pipeline.fake_engine import FakeTextEngine

PARAMS = ProcessParams()


def body(prompt: str) -> str:
    """The text a prompt carries (every prompt puts it between its first blank lines)."""
    return prompt.split("\n\n")[1]


def initials(prompt: str) -> str:
    """A "model" that condenses each line to its first two characters."""
    return "".join(line[:2] for line in body(prompt).split("\n"))


def test_pack_keeps_order_and_budget() -> None:
    texts = ["aaaa", "bb", "cccccccccc", "", "d"]
    chunks = pack(texts, budget=6)
    assert all(len(c) <= 6 for c in chunks)
    # A chunk never passes the budget; a text longer than it is cut into pieces.
    assert chunks == ["aaaa", "bb", "cccccc", "cccc\n", "d"]
    # Nothing lost, nothing reordered.
    assert "".join(chunks).replace("\n", "") == "".join(texts)


def test_texts_that_fit_take_one_call() -> None:
    engine = FakeTextEngine(lambda prompt: "Summary.", budget=1000)
    out = asyncio.run(
        reduce_texts(engine, ["first part", "  ", "second part"], summary_task("Be brief."), PARAMS)
    )
    assert out.text == "Summary."
    # Blank texts are dropped; the final prompt is the summary prompt over the transcript.
    assert engine.prompts == [prompts.summarize_prompt("first part\nsecond part", "Be brief.")]
    assert out.usage.completion_tokens == 1


def test_too_long_texts_are_condensed_then_reduced() -> None:
    engine = FakeTextEngine(initials, budget=120)
    texts = [f"sentence number {i} " * 3 for i in range(12)]  # ~60 chars each
    out = asyncio.run(reduce_texts(engine, texts, summary_task(None), PARAMS))
    map_prompts, final_prompt = engine.prompts[:-1], engine.prompts[-1]
    # Map: one condense call per packed chunk, in order, each within the budget.
    chunks = pack(texts, 120)
    assert len(chunks) > 1
    assert sorted(map_prompts) == sorted(prompts.summarize_prompt(c) for c in chunks)
    assert all(len(body(p)) <= 120 for p in map_prompts)
    # Reduce: the condensed texts, in chunk order, marked as partial summaries.
    condensed = [initials(prompts.summarize_prompt(c)) for c in chunks]
    assert final_prompt == prompts.summarize_prompt("\n".join(condensed), None, partial=True)
    assert out.text == initials(final_prompt)
    # Usage counts every call, the final one included.
    assert out.usage.completion_tokens == len(engine.prompts)
    assert out.usage.prompt_tokens == sum(len(p) for p in engine.prompts)


def test_condensing_repeats_until_it_fits() -> None:
    # A "model" that halves its input: three levels for 8 × 50 chars into 100.
    engine = FakeTextEngine(lambda prompt: body(prompt)[: len(body(prompt)) // 2], budget=100)
    texts = ["x" * 50] * 8
    asyncio.run(reduce_texts(engine, texts, summary_task(None), PARAMS))
    final = body(engine.prompts[-1])
    assert len(final) <= 100
    assert "partial summaries" in engine.prompts[-1]
    assert len(engine.prompts) > len(pack(texts, 100)) + 1  # more than one map level


def test_a_model_that_never_condenses_still_ends_within_budget() -> None:
    # Echoing its input, the map step never shrinks the text: the level cap stops it and
    # the final prompt is cut to the budget rather than overflowing the context.
    engine = FakeTextEngine(body, budget=50)
    out = asyncio.run(reduce_texts(engine, ["y" * 40] * 3, summary_task(None), PARAMS))
    assert len(body(engine.prompts[-1])) == 50
    assert out.text == body(engine.prompts[-1])


def test_answer_task_carries_the_question() -> None:
    engine = FakeTextEngine(lambda prompt: "Blue.", budget=40)
    texts = ["the sky was blue that day", "and the sea was grey"]
    out = asyncio.run(reduce_texts(engine, texts, answer_task("What colour?"), PARAMS))
    assert out.text == "Blue."
    # Map prompts take notes for the question; the final one answers it from notes.
    assert all("What colour?" in p for p in engine.prompts)
    assert engine.prompts[0].startswith("Here is part of a transcript")
    assert engine.prompts[-1].startswith("Here is notes taken from parts of a recording")
