"""pipeline/merge.py on hand-made window outputs: no audio, no model, milliseconds.

Windows are cut at quiet points and never overlap (pipeline/plan.py), so merge has no
de-duplication to do: it shifts each window's segments to the recording's clock, fills a
window that gave text but no segments with one segment spanning it, and drops empty ones.
"""

from __future__ import annotations

import asyncio

import pytest

from stepaudio.audio.cut import Span
from stepaudio.engines.base import ModelOutput, Segment
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline.merge import NO_SPEECH, Merged, merge
from tests.pipeline.fake_engine import FakeTextEngine

SPANS = [Span(0.0, 30.0), Span(30.0, 58.5), Span(58.5, 90.0)]


def run(mode: Mode, outputs: list[ModelOutput], engine: FakeTextEngine | None = None) -> Merged:
    engine = engine or FakeTextEngine(lambda prompt: "SUMMARY")
    spans = SPANS[: len(outputs)]
    return asyncio.run(merge(engine, ProcessParams(mode=mode), spans, outputs))


def three_windows() -> list[ModelOutput]:
    return [
        ModelOutput(
            "hello there. general kenobi.",
            thinking="first window",
            segments=[Segment(0.5, 2.0, "hello there."), Segment(2.5, 29.0, "general kenobi.")],
        ),
        # Text without timestamps (an engine that gives none): one segment for the window.
        ModelOutput("  you are a bold one.  ", thinking=""),
        ModelOutput(
            "kill him.",
            thinking="third window",
            segments=[Segment(1.25, 3.0, "kill him.")],
            truncated=True,
        ),
    ]


def test_asr_segments_are_on_the_recordings_clock() -> None:
    merged = run(Mode.ASR, three_windows())
    assert merged.segments == [
        Segment(0.5, 2.0, "hello there."),
        Segment(2.5, 29.0, "general kenobi."),
        Segment(30.0, 58.5, "you are a bold one."),
        Segment(59.75, 61.5, "kill him."),
    ]
    assert merged.answer == "hello there. general kenobi. you are a bold one. kill him."
    assert merged.transcript == merged.answer
    assert merged.summary is None
    # Windows without reasoning add nothing, not an empty paragraph.
    assert merged.thinking == "first window\n\nthird window"
    assert merged.full_response == f"<think>\n{merged.thinking}\n</think>\n{merged.answer}"
    assert merged.truncated  # one window hit max_tokens
    assert merged.extra == []


def test_empty_windows_are_dropped() -> None:
    outputs = [ModelOutput("first."), ModelOutput("   "), ModelOutput("third.")]
    merged = run(Mode.ASR, outputs)
    assert merged.answer == "first. third."
    assert [(s.start, s.end) for s in merged.segments] == [(0.0, 30.0), (58.5, 90.0)]
    assert not merged.truncated
    assert merged.thinking == "" and merged.full_response == merged.answer


def test_cjk_windows_join_without_spaces() -> None:
    merged = run(Mode.ASR, [ModelOutput("今天天气"), ModelOutput("很好。"), ModelOutput("OK")])
    assert merged.answer == "今天天气很好。 OK"


@pytest.mark.parametrize("mode", list(Mode))
def test_no_speech_in_any_window_is_an_empty_result_with_a_warning(mode: Mode) -> None:
    merged = run(mode, [ModelOutput(""), ModelOutput(" \n")])
    assert merged.answer == "" and merged.segments == []
    assert merged.warnings == [NO_SPEECH]
    assert merged.transcript == ("" if mode in (Mode.ASR, Mode.S2T) else None)


def test_translation_is_not_a_transcript() -> None:
    merged = run(Mode.TRANSLATE, [ModelOutput("bonjour."), ModelOutput("au revoir.")])
    assert merged.answer == "bonjour. au revoir."
    assert merged.transcript is None


def test_a_translation_keeps_its_source_as_the_transcript() -> None:
    outputs = [ModelOutput("bonjour.", source="hello."), ModelOutput("au revoir.", source="bye.")]
    merged = run(Mode.TRANSLATE, outputs)
    assert merged.answer == "bonjour. au revoir." and merged.transcript == "hello. bye."


def test_summary_over_the_transcript_when_the_engine_cannot_summarize_audio() -> None:
    engine = FakeTextEngine(lambda prompt: "A short summary.")
    merged = run(Mode.SUMMARIZE, three_windows(), engine)
    assert merged.transcript == "hello there. general kenobi. you are a bold one. kill him."
    assert merged.answer == merged.summary == "A short summary."
    # One text call, on the segments' text in order.
    assert len(engine.prompts) == 1
    assert "hello there.\ngeneral kenobi.\nyou are a bold one.\nkill him." in engine.prompts[0]
    assert [o.text for o in merged.extra] == ["A short summary."]
    assert merged.truncated  # carried over from the third window


def test_s2t_answer_holds_transcript_and_summary() -> None:
    outputs = [ModelOutput("one."), ModelOutput("two.")]
    merged = run(Mode.S2T, outputs, FakeTextEngine(lambda prompt: "Counting."))
    assert merged.answer == "Transcript:\none. two.\n\nSummary:\nCounting."
    assert merged.transcript == "one. two." and merged.summary == "Counting."


def test_s2t_of_chinese_audio_labels_its_parts_in_chinese() -> None:
    outputs = [ModelOutput("一。", language="zh"), ModelOutput("二。", language="zh")]
    merged = run(Mode.S2T, outputs, FakeTextEngine(lambda prompt: "数数。"))
    assert merged.answer == "转写：\n一。二。\n\n摘要：\n数数。"
    assert merged.transcript == "一。二。" and merged.summary == "数数。"


def test_empty_summary_is_marked_truncated() -> None:
    merged = run(Mode.SUMMARIZE, [ModelOutput("words.")], FakeTextEngine(lambda prompt: " "))
    assert merged.truncated


def test_understand_asks_the_question_over_the_transcript() -> None:
    engine = FakeTextEngine(lambda prompt: "Two people.")
    params = ProcessParams(mode=Mode.UNDERSTAND, question="How many speak?")
    outputs = [ModelOutput("hi."), ModelOutput("hello.")]
    merged = asyncio.run(merge(engine, params, SPANS[:2], outputs))
    assert merged.answer == "Two people." and merged.summary is None
    # Each line carries its time, so the answer can cite where it comes from.
    assert "How many speak?" in engine.prompts[0]
    assert "[0:00] hi.\n[0:30] hello." in engine.prompts[0]


def test_audio_summary_of_one_window_is_taken_as_is() -> None:
    engine = FakeTextEngine(lambda prompt: "never called", modes=frozenset({Mode.SUMMARIZE}))
    merged = run(Mode.SUMMARIZE, [ModelOutput("They agree.", thinking="hm")], engine)
    assert merged.answer == merged.summary == "They agree."
    assert merged.transcript is None and merged.segments == []
    assert engine.prompts == []
    assert merged.full_response == "<think>\nhm\n</think>\nThey agree."


def test_audio_summaries_of_many_windows_are_reduced_as_partial() -> None:
    engine = FakeTextEngine(lambda prompt: "Overall.", modes=frozenset({Mode.SUMMARIZE}))
    merged = run(Mode.SUMMARIZE, [ModelOutput("Part one."), ModelOutput("Part two.")], engine)
    assert merged.answer == "Overall."
    assert len(engine.prompts) == 1
    assert "partial summaries" in engine.prompts[0]
    assert "Part one.\nPart two." in engine.prompts[0]
    assert [o.text for o in merged.extra] == ["Overall."]


def test_an_answer_cites_real_times_and_says_what_it_could_not_find() -> None:
    answer = 'Obi-Wan greets him. [0:05] "general kenobi" and [2:00] "I have the high ground".'
    merged = run(Mode.UNDERSTAND, three_windows(), FakeTextEngine(lambda prompt: answer))
    assert merged.answer.startswith('Obi-Wan greets him. [0:02] "general kenobi" and "I have')
    assert [(c.start, c.end) for c in merged.citations] == [(2.5, 29.0)]
    assert merged.warnings and merged.warnings[0].startswith("citation_unmatched")


def test_the_answer_prompt_gives_no_example_time_and_says_what_the_model_has() -> None:
    engine = FakeTextEngine(lambda prompt: "An answer.")
    run(Mode.UNDERSTAND, three_windows(), engine)
    prompt = engine.prompts[-1]
    assert "[0:05]" not in prompt and "[0:00] hello there." in prompt
    assert "from the text only" in prompt
