"""The translator's policy on what a small text model gets wrong: a word left in the source
language, a repeated sentence merged into one, a terse answer, a broken one.

The text model here is scripted with what qwen-0.5b answered in CI runs, so every branch
is reached on purpose; the real models' translations are in test_text_quality.py and the
API tests.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from stepaudio.engines.base import ModelOutput, Segment, TextJob, Usage
from stepaudio.engines.translate import Translator, sentences, too_short
from stepaudio.errors import DegenerateOutput
from stepaudio.params import ProcessParams

TRADE = "甚至出现交易几乎停滞的情况。"
ENGLISH = ProcessParams.from_user(mode="translate", target_lang="English")


@dataclass
class Scripted:
    """The text model: answers each prompt from ``answers`` (by the text it is asked to
    translate), in order when a text is asked for more than once."""

    answers: dict[str, list[str]]
    asked: list[str] = field(default_factory=list)

    async def __call__(self, job: TextJob) -> ModelOutput:
        source = job.prompt.split("\n\n", 1)[1]
        self.asked.append(source)
        return ModelOutput(self.answers[source].pop(0))


def translate(model: Scripted, segments: list[Segment]) -> list[Segment]:
    return asyncio.run(Translator(model).translate(segments, ENGLISH, Usage()))


def test_a_word_left_in_chinese_is_translated_in_its_place() -> None:
    model = Scripted(
        {
            "先歌舞会报一下。": ["First we had a歌舞 event."],
            "歌舞": ["Song and dance."],
        }
    )
    out = translate(model, [Segment(0, 5, "先歌舞会报一下。")])
    assert out == [Segment(0, 5, "First we had a Song and dance event.", language="en")]
    assert model.asked == ["先歌舞会报一下。", "歌舞"]


def test_a_word_that_stays_chinese_is_refused_not_returned() -> None:
    model = Scripted({"先歌舞会报一下。": ["First we had a歌舞 event."] * 2, "歌舞": ["歌舞"] * 2})
    with pytest.raises(DegenerateOutput, match="left untranslated"):
        translate(model, [Segment(0, 5, "先歌舞会报一下。")])


def test_a_repeated_sentence_merged_into_one_is_translated_again_in_halves() -> None:
    once = "Even trading almost came to a standstill."
    model = Scripted({f"{TRADE}{TRADE}": [once], TRADE: [once, once]})
    out = translate(model, [Segment(0, 4, TRADE), Segment(5, 9, TRADE)])
    assert [s.text for s in out] == [once, once]
    assert (out[0].start, out[1].start) == (0, 5)


def test_one_segment_of_two_sentences_is_translated_a_sentence_at_a_time() -> None:
    once = "Even trading almost came to a standstill."
    model = Scripted({f"{TRADE}{TRADE}": [once], TRADE: [once, once]})
    out = translate(model, [Segment(0, 9, f"{TRADE}{TRADE}")])
    assert out == [Segment(0, 9, f"{once} {once}", language="en")]


def test_a_terse_translation_is_kept_when_the_retry_breaks() -> None:
    model = Scripted({TRADE: ["Trade stalled.", "交易停滞"]})
    out = translate(model, [Segment(0, 4, TRADE)])
    assert out == [Segment(0, 4, "Trade stalled.", language="en")]


def test_lengths_across_scripts() -> None:
    assert not too_short(TRADE, "Even trading almost came to a standstill.")
    assert too_short(TRADE * 2, "Even trading almost came to a standstill.")
    assert not too_short("So my fellow Americans, ask not.", "所以，美国同胞们，不要问。")
    assert sentences(f"{TRADE}{TRADE}") == [TRADE, TRADE]
    assert sentences("One. Two? Three") == ["One.", "Two?", "Three"]
