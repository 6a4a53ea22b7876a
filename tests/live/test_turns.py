"""Append-only text from changing hypotheses: what is shown is never taken back, and a
turn's deltas joined are its final text, whatever the hypotheses were."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.live import Completed, Delta, LiveEvent, LiveSession
from stepaudio.live.session import Heard
from stepaudio.live.turns import agreed, continuation, tokens

WORDS = st.sampled_from(["ask ", "not ", "what ", "your ", "country", "国", "家", "。", "can, "])


def test_tokens_join_back_to_the_text():
    text = "And so, my fellow 美国人民。 ask"
    assert "".join(tokens(text)) == text
    assert tokens("我们要") == ["我", "们", "要"]


def test_only_words_both_hypotheses_share_and_closed_ones():
    assert agreed("And so my", "And so my fellow") == "And so my "
    assert agreed("And so my fel", "And so my fellow Americans") == "And so my "
    # The last word may still grow while nothing follows it.
    assert agreed("ask no", "ask no") == "ask "
    assert agreed("我们要", "我们要去") == "我们要"
    assert agreed("", "anything") == ""


def test_the_final_text_continues_what_was_shown():
    assert continuation("And so ", "And so my fellow") == "my fellow"
    # Shown words stand even where the final hypothesis spelt them otherwise.
    assert continuation("And so ", "and so, my fellow") == "my fellow"
    assert continuation("我们", "我门要去") == "要去"
    assert continuation("ask", "ask not") == " not"


@given(
    st.lists(st.lists(WORDS, max_size=8), min_size=1, max_size=6),
    st.lists(WORDS, max_size=8),
)
def test_a_sessions_deltas_joined_are_its_completed_text(
    partials: list[list[str]], final_words: list[str]
):
    """Whatever the hypotheses of a turn (partials that change their minds, a final one
    that disagrees with them), the deltas sent are append-only and add up to the
    completed transcript."""
    hypotheses = ["".join(words) for words in partials]
    final = "".join(final_words)

    async def transcribe(samples: np.ndarray, is_final: bool) -> Heard:
        return Heard(final if is_final else hypotheses.pop(0) if hypotheses else final)

    async def scenario() -> list[LiveEvent]:
        events: list[LiveEvent] = []

        async def emit(event: LiveEvent) -> None:
            events.append(event)

        session = LiveSession(transcribe, emit, vad=None, partial_interval_s=0.1)
        for _ in range(len(partials)):
            await session.append(np.ones(SAMPLE_RATE // 10, np.int16))
            await asyncio.sleep(0)  # the worker takes the partial
            await asyncio.sleep(0)
        await session.commit()
        await session.drain()
        await session.close()
        return events

    events = asyncio.run(scenario())
    completed = [e for e in events if isinstance(e, Completed)]
    assert len(completed) == 1
    deltas = [e.delta for e in events if isinstance(e, Delta)]
    assert all(deltas)
    assert "".join(deltas) == completed[0].transcript
    assert completed[0].audio_seconds == pytest.approx(len(partials) / 10)
