"""Mandarin goes to Whisper in its own compute type, given or detected (real model)."""

from __future__ import annotations

import pytest

from stepaudio.config import Settings
from stepaudio.engines.whisper import WhisperTranscriber
from stepaudio.testing.longaudio import load_pcm
from tests.helpers import cer, clip, reference

# Real Whisper models of two compute types: the model tier (make test-heavy).
pytestmark = pytest.mark.model

ZH = {"file": "zh/aishell_BAC009S0764W0122.wav", "ref": "zh/aishell_BAC009S0764W0122.txt"}


def test_mandarin_detected_or_given_uses_the_chinese_compute_type(settings: Settings) -> None:
    w = WhisperTranscriber(
        "base", settings.models_path, compute_type="int8", chinese_compute_type="float32"
    )
    english = w.transcribe(load_pcm(clip("en/jfk.flac")))
    assert english.language == "en" and "country" in english.text
    assert set(w._models) == {"int8"}
    detected = w.transcribe(load_pcm(clip(ZH["file"])))
    assert detected.language == "zh" and set(w._models) == {"int8", "float32"}
    given = w.transcribe(load_pcm(clip(ZH["file"])), language="zh")
    assert given.text == detected.text
    assert cer([reference(ZH)], [given.text]) <= 0.3, given.text


def test_one_compute_type_loads_one_model(settings: Settings) -> None:
    w = WhisperTranscriber("base", settings.models_path, compute_type="int8")
    w.transcribe(load_pcm(clip(ZH["file"])))
    assert set(w._models) == {"int8"}
