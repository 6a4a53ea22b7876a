"""/v1 as OpenAI defines it (issue 15): every response format checked against the official
SDK's own response types, usage, errors in the client's terms, streamed deltas that add up
to the final text in every language, and models that exist."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.audio import (
    Transcription,
    TranscriptionSegment,
    TranscriptionVerbose,
    Translation,
    TranslationVerbose,
)

from stepaudio.api import create_app
from stepaudio.config import Settings
from stepaudio.engines.embedded import EmbeddedEngine
from stepaudio.testing.encode import write_audio
from stepaudio.testing.longaudio import build
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip

JFK = clip("en/jfk.flac")
ZH = clip("zh/thchs30_A11_0.wav")
SEGMENT_FIELDS = set(TranscriptionSegment.model_fields)


@pytest.fixture
def sdk(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)


def ours(response: httpx.Response, data_dir: Path) -> httpx.Response:
    """``response``, checked to name no path of ours (every response in this file)."""
    assert str(data_dir) not in response.text
    assert "upload-" not in response.text
    return response


def post(
    client: httpx.Client, settings: Settings, route: str, path: Path, **form: str
) -> httpx.Response:
    with open(path, "rb") as f:
        r = client.post(f"/v1/audio/{route}", files={"file": (path.name, f)}, data=form)
    return ours(r, settings.data_dir)


def check_segments(body: dict) -> None:
    assert body["segments"]
    for i, segment in enumerate(body["segments"]):
        # Every field the SDK declares, written out (not filled by a default).
        assert set(segment) >= SEGMENT_FIELDS and segment["id"] == i
    # The embedded Whisper's own measures, not placeholders.
    assert any(s["avg_logprob"] < 0 for s in body["segments"])
    assert all(s["tokens"] and 0 <= s["no_speech_prob"] <= 1 for s in body["segments"])
    assert all(s["compression_ratio"] > 0 for s in body["segments"])


def test_transcription_formats_are_the_sdks_types(client: httpx.Client, settings: Settings):
    r = post(client, settings, "transcriptions", JFK, model="whisper-1", response_format="json")
    assert r.status_code == 200
    plain = Transcription.model_validate(r.json())
    assert "your country" in plain.text.lower()
    # Usage as OpenAI bills whisper-1: the audio's whole seconds, rounded up.
    assert plain.usage is not None and plain.usage.type == "duration"
    assert r.json()["usage"] == {"type": "duration", "seconds": 11}

    r = post(
        client, settings, "transcriptions", JFK, model="whisper-1", response_format="verbose_json"
    )
    body = r.json()
    verbose = TranscriptionVerbose.model_validate(body)
    assert verbose.language == "en" and verbose.duration == pytest.approx(11.0, abs=0.1)
    assert body["usage"] == {"type": "duration", "seconds": math.ceil(verbose.duration)}
    check_segments(body)
    assert verbose.segments and verbose.segments[0].seek == 0

    for fmt, head in (("text", ""), ("srt", "1\n00:00:00,000 --> "), ("vtt", "WEBVTT")):
        r = post(client, settings, "transcriptions", JFK, model="whisper-1", response_format=fmt)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/")
        assert r.text.startswith(head) and "your country" in r.text.lower()


def test_translation_formats_are_the_sdks_types(client: httpx.Client, settings: Settings):
    r = post(client, settings, "translations", ZH, model="whisper-1", response_format="json")
    assert r.status_code == 200
    assert Translation.model_validate(r.json()).text.isascii()

    r = post(
        client, settings, "translations", ZH, model="whisper-1", response_format="verbose_json"
    )
    body = r.json()
    verbose = TranslationVerbose.model_validate(body)
    assert verbose.text.strip() and verbose.language == "zh"
    check_segments(body)

    for fmt, head in (("text", ""), ("srt", "1\n00:00:00,000 --> "), ("vtt", "WEBVTT")):
        r = post(client, settings, "translations", ZH, model="whisper-1", response_format=fmt)
        assert r.status_code == 200 and r.text.strip().startswith(head)


def sse(response: httpx.Response) -> list[dict]:
    lines = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_stream_done_carries_usage(client: httpx.Client, settings: Settings):
    r = post(client, settings, "transcriptions", JFK, model="whisper-1", stream="true")
    events = sse(r)
    done = events[-1]
    assert done["type"] == "transcript.text.done"
    assert done["usage"] == {"type": "duration", "seconds": 11}
    assert "".join(e["delta"] for e in events[:-1]) == done["text"]


def test_undecodable_upload_names_the_clients_file(client: httpx.Client, settings: Settings):
    for stream in ("false", "true"):
        r = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("talk.mp3", b"not audio at all")},
            data={"model": "whisper-1", "stream": stream},
        )
        error = ours(r, settings.data_dir).json()["error"]
        assert r.status_code == 400 and error["code"] == "invalid_audio"
        # The form's field is `file` here; the message names the client's file, not ours.
        assert error["param"] == "file"
        assert "/" not in error["message"] and "talk.mp3" in error["message"]
    # The seed's route names its own field, and no path either.
    r = client.post("/api/process", files={"audio": ("talk.mp3", b"not audio")}, data={})
    error = ours(r, settings.data_dir).json()["error"]
    assert r.status_code == 400 and error["param"] == "audio"


def test_unknown_model_is_404(sdk: openai.OpenAI, client: httpx.Client, settings: Settings):
    with pytest.raises(openai.NotFoundError) as caught, open(JFK, "rb") as f:
        sdk.audio.transcriptions.create(model="JackFram/llama-68m", file=f)
    assert caught.value.body["code"] == "model_not_found"
    assert caught.value.body["param"] == "model"
    with pytest.raises(openai.NotFoundError), open(ZH, "rb") as f:
        sdk.audio.translations.create(model="gpt-4o-transcribe", file=f)
    # Every listed name is accepted (and whisper-1 is one of them).
    listed = [m.id for m in sdk.models.list().data]
    assert "whisper-1" in listed and len(listed) == len(set(listed))
    short = clip("zh/wenet_nst_ID001.wav")
    for name in listed:
        r = post(client, settings, "transcriptions", short, model=name, response_format="text")
        assert r.status_code == 200, (name, r.text)


@pytest.fixture(scope="module")
def windowed(
    tmp_path_factory: pytest.TempPathFactory, embedded: EmbeddedEngine
) -> Iterator[tuple[str, Settings]]:
    """A server cutting ASR windows at 10 s (the shortest allowed): the session's engine,
    its models already loaded, with only the window length changed."""
    data_dir = tmp_path_factory.mktemp("windowed")
    settings = Settings(data_dir=data_dir, asr_window_s=10, _env_file=None)
    engine = copy.copy(embedded)
    engine.asr_window_s = settings.asr_window_s
    with serve_in_thread(create_app(settings, engine=engine), settings=settings) as url:
        yield url, settings


def test_stream_deltas_add_up_to_the_chinese_text(windowed: tuple[str, Settings], tmp_path: Path):
    url, settings = windowed
    clips = [
        clip("zh/firered_TEST_MEETING_T0000000001_S00000.wav"),
        clip("zh/thchs30_A11_0.wav"),
        clip("zh/aishell-BAC009S0724W0121.wav"),
        clip("zh/firered_BAC009S0764W0121.wav"),
    ]
    pcm, _ = build(clips, min_seconds=30)
    path = write_audio(pcm, tmp_path / "meeting.wav")
    with httpx.Client(base_url=url, timeout=300) as client:
        r = post(client, settings, "transcriptions", path, language="zh", stream="true")
        events = sse(r)
        final = post(client, settings, "transcriptions", path, language="zh")
    deltas = [e["delta"] for e in events if e["type"] == "transcript.text.delta"]
    done = events[-1]
    assert done["type"] == "transcript.text.done" and len(deltas) >= 3  # several windows
    assert "".join(deltas) == done["text"] == final.json()["text"]
