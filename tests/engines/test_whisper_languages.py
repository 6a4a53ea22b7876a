"""The language as spoken: each speech chunk transcribed in its own language, never
translated unasked, and a language asked for that the speech is not in said in a warning.

The recording: faster-whisper's test clip, the MIT licence read in English (0–29 s), then
in German (30–60 s)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from stepaudio.engines.base import ModelOutput, WindowJob
from stepaudio.engines.embedded import EmbeddedEngine, mismatches
from stepaudio.engines.whisper_batched import Heard
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline.merge import languages_spoken
from stepaudio.testing.longaudio import load_pcm
from tests.helpers import clip

TWO_LANGUAGES = clip("other/multilingual_en_de.mp3")
GERMAN_START = 29.9  # the pause between the two readings


@pytest.fixture(scope="module")
def pcm() -> np.ndarray:
    return load_pcm(TWO_LANGUAGES)


def _window(engine: EmbeddedEngine, pcm: np.ndarray, mode: Mode, **params):
    import anyio

    job = WindowJob(mode, pcm, 0.0, ProcessParams(mode=mode, **params))
    return anyio.run(engine.run_window, job)


def test_each_half_is_written_in_the_language_it_is_spoken_in(embedded: EmbeddedEngine, pcm):
    transcript = embedded.whisper.transcribe(pcm)
    english = [s for s in transcript.segments if s.end <= GERMAN_START]
    german = [s for s in transcript.segments if s.start >= GERMAN_START]
    assert english and german
    assert {s.language for s in english} == {"en"}
    assert {s.language for s in german} == {"de"}
    assert "permission is hereby granted" in " ".join(s.text for s in english).lower()
    said = " ".join(s.text for s in german)
    # German words, not their English translation ("software", "right", "documentation").
    assert "Software" in said and ("Recht" in said or "Dokumentation" in said), said
    assert "right" not in said.lower().split()
    assert transcript.language == "en" and set(transcript.spoken) == {"en", "de"}


def test_a_language_asked_for_is_kept_and_a_mismatch_said(embedded: EmbeddedEngine, pcm):
    out = _window(embedded, pcm, Mode.ASR, language="en")
    assert {s.language for s in out.segments} == {"en"}
    assert len(out.warnings) == 1, out.warnings
    warning = out.warnings[0]
    assert warning.startswith("language_mismatch: 0:30")
    assert "German" in warning and "English" in warning


@pytest.mark.parametrize(
    ("name", "language"),
    [
        ("en/jfk.flac", "en"),
        ("zh/aishell-BAC009S0724W0121.wav", "zh"),
        ("zh/wenet_nst_ID003.wav", "zh"),
    ],
)
def test_the_right_language_asked_for_warns_of_nothing(embedded: EmbeddedEngine, name, language):
    out = _window(embedded, load_pcm(clip(name)), Mode.ASR, language=language)
    assert out.text and out.warnings == []


def test_the_service_reports_every_language_heard(client: httpx.Client):
    with open(TWO_LANGUAGES, "rb") as f:
        r = client.post("/api/process", files={"audio": f}, data={"mode": "asr"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["language"] == "en" and body["languages"] == ["en", "de"]
    assert body["warnings"] == []
    labels = [(s["language"], s["start"] >= GERMAN_START) for s in body["segments"]]
    assert set(labels) == {("en", False), ("de", True)}


def test_a_translation_leaves_what_is_already_in_the_target_language(embedded: EmbeddedEngine, pcm):
    out = _window(embedded, pcm, Mode.TRANSLATE, target_lang="English")
    source = embedded.whisper.transcribe(pcm).segments
    english_source = [s.text for s in source if s.language == "en"]
    kept = [s.text for s in out.segments if s.end <= GERMAN_START]
    assert kept == english_source
    translated = " ".join(s.text for s in out.segments if s.start >= GERMAN_START)
    assert translated and "Software" not in translated and "software" in translated.lower()
    assert {s.language for s in out.segments} == {"en"}
    assert "Dokumentation" in (out.source or "")


def test_mismatch_warnings_name_the_stretch_and_both_languages():
    heard = [Heard(0.0, 29.6, "en", 0.99), Heard(30.4, 59.9, "de", 0.97), Heard(60, 61, "fr", 0.5)]
    assert mismatches(heard, None, 0.0) == []  # nothing asked: each chunk its own
    (warning,) = mismatches(heard, "en", 300.0)  # a window 5 minutes in
    assert warning.startswith("language_mismatch: 5:30–5:59 sounds like German (97% sure)")
    assert "written in English" in warning
    # Chinese asked by a script variant is still Chinese.
    assert mismatches([Heard(0, 5, "zh", 0.99)], "zh", 0.0) == []


def test_languages_are_listed_most_spoken_first():
    outputs = [
        ModelOutput("a", language="en", spoken={"en": 20.0, "de": 5.0}),
        ModelOutput("b", language="de", spoken={"de": 30.0}),
        ModelOutput("c", language="fr"),  # an engine that does not say how much
    ]
    assert languages_spoken(outputs) == ["de", "en", "fr"]
    assert languages_spoken([]) == []
