"""The seed's endpoints on the embedded engine, driven over real HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from stepaudio.engines.degenerate import find_loop, in_target_script
from stepaudio.testing.encode import SEED_FORMATS, write_audio
from stepaudio.testing.longaudio import load_pcm
from tests.helpers import cer, clip, reference, referenced, wer

SEED_KEYS = {"status", "answer", "thinking", "full_response", "elapsed_time"}


def post(client: httpx.Client, path: Path, **fields) -> httpx.Response:
    with open(path, "rb") as f:
        return client.post("/api/process", files={"audio": (path.name, f)}, data=fields)


def test_asr_returns_the_transcript_in_answer(client: httpx.Client):
    r = post(client, clip("en/jfk.flac"), mode="asr")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body.keys() >= SEED_KEYS
    assert body["status"] == "success"
    assert "ask not what your country can do for you" in body["answer"].lower()
    assert body["transcript"] == body["answer"]
    assert body["thinking"] == ""
    assert body["segments"][0]["start"] == 0.0
    assert body["audio"]["duration"] == pytest.approx(11.0, abs=0.05)
    assert body["usage"]["audio_seconds"] == pytest.approx(11.0, abs=0.1)
    assert body["engine"] == "embedded" and body["windows"] == 1


def transcribe_references(client: httpx.Client, lang: str) -> tuple[list[str], list[str]]:
    """(references, transcripts) of every clip of ``lang`` that has a reference."""
    refs, hyps = [], []
    for entry in referenced(lang):
        r = post(client, clip(entry["file"]), mode="asr", language=lang)
        assert r.status_code == 200, r.text
        refs.append(reference(entry))
        hyps.append(r.json()["answer"])
    return refs, hyps


@pytest.mark.heavy
def test_english_wer_within_8_percent(client: httpx.Client):
    # Issue 11's bar (7.3 % sequential, 7.7 % with today's batched Whisper, beam 5).
    entries = referenced("en")
    score = wer(*transcribe_references(client, "en"))
    print(f"English WER over {len(entries)} clips: {score:.3f}")
    assert score <= 0.08


@pytest.mark.heavy
def test_mandarin_cer_within_23_percent(client: httpx.Client):
    # Whisper base in float32 for Mandarin (whisper.chinese_compute_type): 21.0 % here.
    # In int8 it was 21.7 % on one CPU and 25.5 % on another (AVX-512 VNNI): int8 kernels
    # differ by instruction set, and a bar on them failed CI on the other machine.
    entries = referenced("zh")
    score = cer(*transcribe_references(client, "zh"))
    print(f"Mandarin CER over {len(entries)} clips: {score:.3f}")
    assert score <= 0.23


@pytest.mark.parametrize("fmt", SEED_FORMATS)
def test_every_seed_format_transcribes(fmt: str, client: httpx.Client, tmp_path: Path):
    path = write_audio(load_pcm(clip("en/jfk.flac")), tmp_path / f"jfk.{fmt}")
    r = post(client, path, mode="asr", language="en")
    assert r.status_code == 200, r.text
    assert wer([reference({"ref": "en/jfk.txt"})], [r.json()["answer"]]) <= 0.15


def test_s2t_gives_transcript_and_summary(client: httpx.Client):
    r = post(client, clip("en/jfk.flac"), mode="s2t")
    assert r.status_code == 200, r.text
    body = r.json()
    assert "your country" in body["transcript"].lower()
    assert len(body["summary"].strip()) > 20
    assert body["summary"] in body["answer"] and body["transcript"] in body["answer"]


def test_understand_answers_about_the_content(client: httpx.Client):
    r = post(
        client,
        clip("en/jfk.flac"),
        mode="understand",
        question="What does the speaker ask his fellow Americans to think about?",
    )
    assert r.status_code == 200, r.text
    answer = r.json()["answer"].lower()
    assert answer.strip()
    assert any(word in answer for word in ("country", "americans", "nation"))


def test_translate_to_english_is_english(client: httpx.Client):
    # Transcript, then the text model (Whisper base's own translation lost the meaning:
    # docs/benchmarks.md, "Text models").
    r = post(
        client,
        clip("zh/firered_TEST_MEETING_T0000000001_S00000.wav"),
        mode="translate",
        target_lang="English",
    )
    assert r.status_code == 200, r.text
    answer = r.json()["answer"]
    assert in_target_script(answer, "English"), answer
    assert find_loop(answer) is None, answer


def test_audio_info_has_seed_keys_and_ours(client: httpx.Client):
    with open(clip("en/jfk.flac"), "rb") as f:
        r = client.post("/api/audio/info", files={"audio": ("jfk.flac", f)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["duration"] == pytest.approx(11.0, abs=0.05)
    assert (body["sample_rate"], body["channels"], body["sample_width"]) == (44100, 2, 2)
    assert body["frame_count"] == pytest.approx(485100, rel=0.01)
    assert body["format"] == "flac" and body["codec"] == "flac"
    assert body["estimated_audio_tokens"] == 139
    assert body["windows"] == 1 and body["size_bytes"] > 0


def test_status_health_ready_metrics(client: httpx.Client):
    status = client.get("/api/status").json()
    assert set(status["stats"]) == {"completed", "processing", "waiting", "total_time"}
    assert "model" in status and "vllm_url" in status
    assert client.get("/health").json()["status"] == "healthy"
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    metrics = client.get("/metrics")
    assert "stepaudio_requests_total" in metrics.text
    assert client.get("/docs").status_code == 200
    assert "/api/process" in client.get("/openapi.json").json()["paths"]


def test_silence_is_a_clear_error_not_an_empty_answer(client: httpx.Client, tmp_path: Path):
    path = write_audio(np.zeros(16000 * 3, dtype=np.int16), tmp_path / "silence.wav")
    r = post(client, path, mode="asr")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "no_speech"
