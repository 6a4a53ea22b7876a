"""The seed's endpoints, driven over real HTTP.

Most tests run the service on a scripted engine (no model): their subject is the seed's
protocol (keys, formats, modes, errors), and each window's answer describes the audio it
held (``heard 11.00 s, rms 1234``), so a test still sees what was decoded and sent. The
tests whose subject is the model's words (transcripts, answers, translations, error
rates) are at the end, on the embedded engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from stepaudio.engines.base import ModelOutput, WindowJob
from stepaudio.engines.degenerate import find_loop, in_target_script
from stepaudio.params import Mode
from stepaudio.testing.encode import FORMATS, SEED_FORMATS, write_audio
from stepaudio.testing.longaudio import load_pcm
from stepaudio.testing.scripted import ScriptedEngine, describe_window
from stepaudio.testing.server import serve_scripted
from tests.helpers import cer, clip, reference, referenced, wer

SEED_KEYS = {"status", "answer", "thinking", "full_response", "elapsed_time"}
JFK = clip("en/jfk.flac")  # 11.0 s


def post(client: httpx.Client, path: Path, **fields) -> httpx.Response:
    with open(path, "rb") as f:
        return client.post("/api/process", files={"audio": (path.name, f)}, data=fields)


def quiet_or_described(job: WindowJob) -> ModelOutput:
    """The scripted model: hears nothing in digital silence, describes anything else."""
    if not np.any(job.pcm):
        return ModelOutput("")
    return describe_window(job)


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ScriptedEngine]]:
    with serve_scripted(
        tmp_path_factory.mktemp("seed"), ScriptedEngine(on_window=quiet_or_described)
    ) as served:
        yield served


@pytest.fixture
def scripted(seed: tuple[str, ScriptedEngine]) -> Iterator[tuple[httpx.Client, ScriptedEngine]]:
    """A client of the scripted service, and its engine with no job recorded yet."""
    url, engine = seed
    engine.windows.clear()
    engine.texts.clear()
    with httpx.Client(base_url=url, timeout=60) as c:
        yield c, engine


def heard(text: str) -> tuple[float, float]:
    """(seconds, rms) of a scripted window's answer."""
    found = re.fullmatch(r"heard (\S+) s, rms (\S+)", text)
    assert found, text
    return float(found[1]), float(found[2])


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))


# -- the protocol, on the scripted engine ------------------------------------------------


def test_asr_returns_the_transcript_in_answer(scripted):
    client, engine = scripted
    r = post(client, JFK, mode="asr")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body.keys() >= SEED_KEYS
    assert body["status"] == "success"
    [job] = engine.windows
    assert job.mode is Mode.ASR
    # The window's samples are gone with the request: the answer is checked against the
    # recording itself.
    seconds, level = heard(body["answer"])
    assert seconds == pytest.approx(11.0, abs=0.05)
    assert level == pytest.approx(rms(load_pcm(JFK)), rel=0.02)
    assert body["transcript"] == body["answer"]
    assert body["thinking"] == ""
    assert body["segments"][0]["start"] == 0.0
    assert body["audio"]["duration"] == pytest.approx(11.0, abs=0.05)
    assert body["usage"]["audio_seconds"] == pytest.approx(11.0, abs=0.1)
    assert body["engine"] == "scripted" and body["windows"] == 1
    assert engine.texts == []


@pytest.mark.parametrize("fmt", SEED_FORMATS)
def test_every_seed_format_transcribes(fmt: str, scripted, tmp_path: Path):
    # Each format decodes to the recording that was encoded: its length, and its loudness
    # within what a lossy codec (AMR is 8 kHz narrowband) takes away. The encoder spreads
    # mono over two channels at -3 dB each; the service's downmix keeps that level.
    client, engine = scripted
    pcm = load_pcm(JFK)
    path = write_audio(pcm, tmp_path / f"jfk.{fmt}")
    r = post(client, path, mode="asr", language="en")
    assert r.status_code == 200, r.text
    [job] = engine.windows
    assert job.params.language == "en"
    seconds, level = heard(r.json()["answer"])
    assert seconds == pytest.approx(len(pcm) / 16000, abs=0.15)
    spread = 2**-0.5 if FORMATS[fmt][3] == 2 else 1.0
    assert level == pytest.approx(rms(pcm) * spread, rel=0.15)


def test_s2t_gives_transcript_and_summary(scripted):
    client, engine = scripted
    r = post(client, JFK, mode="s2t")
    assert r.status_code == 200, r.text
    body = r.json()
    # Windows are transcribed, then one text call summarises the transcript.
    [job] = engine.windows
    assert job.mode is Mode.ASR
    [text_job] = engine.texts
    seconds, _ = heard(body["transcript"])
    assert seconds == pytest.approx(11.0, abs=0.05)
    assert body["transcript"] in text_job.prompt
    assert body["summary"] == engine.on_text(text_job).text
    assert body["summary"].strip()
    assert body["summary"] in body["answer"] and body["transcript"] in body["answer"]


def test_audio_info_has_seed_keys_and_ours(scripted):
    client, engine = scripted
    with open(JFK, "rb") as f:
        r = client.post("/api/audio/info", files={"audio": ("jfk.flac", f)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["duration"] == pytest.approx(11.0, abs=0.05)
    assert (body["sample_rate"], body["channels"], body["sample_width"]) == (44100, 2, 2)
    assert body["frame_count"] == pytest.approx(485100, rel=0.01)
    assert body["format"] == "flac" and body["codec"] == "flac"
    assert body["estimated_audio_tokens"] == 139
    assert body["windows"] == 1 and body["size_bytes"] > 0
    assert engine.windows == []  # described, not processed


def test_status_health_ready_metrics(scripted):
    client, _ = scripted
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


def test_silence_is_an_empty_success_with_a_warning(scripted, tmp_path: Path):
    """As OpenAI answers: 200 with empty text, so a batch goes on past a quiet minute;
    the seed's answer says why it is empty."""
    client, engine = scripted
    path = write_audio(np.zeros(16000 * 3, dtype=np.int16), tmp_path / "silence.wav")
    for mode in ("asr", "s2t", "summarize"):
        r = post(client, path, mode=mode)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "success" and body["answer"] == "" and body["segments"] == []
        assert any(w.startswith("no_speech") for w in body["warnings"])
    assert not engine.texts  # nothing to summarise: the text model was not asked
    r = client.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper-1"},
        files={"file": ("silence.wav", path.read_bytes())},
    )
    assert r.status_code == 200 and r.json()["text"] == ""


# -- the model's words, on the embedded engine -------------------------------------------


def test_asr_transcript_is_the_speech(client: httpx.Client):
    r = post(client, JFK, mode="asr")
    assert r.status_code == 200, r.text
    body = r.json()
    assert "ask not what your country can do for you" in body["answer"].lower()
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


def test_s2t_summary_is_about_the_speech(client: httpx.Client):
    r = post(client, JFK, mode="s2t")
    assert r.status_code == 200, r.text
    body = r.json()
    assert "your country" in body["transcript"].lower()
    assert len(body["summary"].strip()) > 20


def test_understand_answers_about_the_content(client: httpx.Client):
    r = post(
        client,
        JFK,
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


def test_a_translation_comes_with_what_was_said(scripted):
    """The source beside the translation, so a reader can check one against the other."""
    client, _ = scripted
    r = post(client, clip("en/jfk.flac"), mode="translate", target_lang="German")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"].startswith("heard 11.0") and body["transcript"].startswith("said 11.0")
