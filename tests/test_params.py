"""ProcessParams.from_user: every face passes what the user gave; what they left out takes
the model's defaults (stated once, in params.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stepaudio.params import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_QUESTION,
    DEFAULT_TARGET_LANG,
    DEFAULT_TOP_P,
    Mode,
    ProcessParams,
)


def test_left_out_values_take_the_defaults():
    p = ProcessParams.from_user(
        mode=None, question="", target_lang=None, instruction="", max_tokens=None, top_p=None
    )
    assert p == ProcessParams()
    assert (p.mode, p.question, p.target_lang) == (Mode.S2T, DEFAULT_QUESTION, "Chinese")
    assert (p.max_tokens, p.top_p, p.instruction) == (DEFAULT_MAX_TOKENS, DEFAULT_TOP_P, None)
    assert p.target_lang == DEFAULT_TARGET_LANG


def test_given_values_are_kept_and_falsy_ones_are_values():
    p = ProcessParams.from_user(
        mode="asr", language="en", temperature=0.0, thinking=False, question="Who?"
    )
    assert p.mode is Mode.ASR and p.language == "en" and p.question == "Who?"
    # 0 and False are answers, not omissions.
    assert p.temperature == 0.0 and p.thinking is False


def test_blank_but_not_empty_text_is_validated_as_given():
    """Over HTTP a target_lang of spaces is a mistake to report, not a default to guess."""
    with pytest.raises(ValidationError) as refused:
        ProcessParams.from_user(target_lang="   ")
    assert refused.value.errors()[0]["loc"] == ("target_lang",)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"mode": "sing"}, "mode"),
        ({"segment_duration": float("nan")}, "segment_duration"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_wrong_values_are_refused(values: dict, field: str):
    with pytest.raises(ValidationError) as refused:
        ProcessParams.from_user(**values)
    assert refused.value.errors()[0]["loc"] == (field,)


@pytest.mark.parametrize(
    ("mode", "temperature"),
    [(Mode.ASR, 0.0), (Mode.TRANSLATE, 0.1), (Mode.S2T, 0.7), (Mode.SUMMARIZE, 0.7)],
)
def test_temperature_defaults_by_mode(mode: Mode, temperature: float):
    assert mode.default_temperature == temperature
    assert ProcessParams.from_user(mode=mode).effective_temperature() == temperature
    assert ProcessParams.from_user(mode=mode, temperature=1.5).effective_temperature() == 1.5
