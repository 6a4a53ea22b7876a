"""The official openai SDK, unchanged, against our /v1 endpoints."""

from __future__ import annotations

import base64

import httpx
import openai
import pytest

from tests.helpers import clip, is_english, reference, wer

JFK = reference({"ref": "en/jfk.txt"})


@pytest.fixture
def sdk(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)


def test_transcription_json_and_text(sdk: openai.OpenAI):
    with open(clip("en/jfk.flac"), "rb") as f:
        result = sdk.audio.transcriptions.create(model="whisper-1", file=f, language="en")
    assert wer([JFK], [result.text]) <= 0.1
    with open(clip("en/jfk.flac"), "rb") as f:
        text = sdk.audio.transcriptions.create(model="whisper-1", file=f, response_format="text")
    assert "your country" in str(text).lower()


def test_transcription_verbose_json_srt_vtt(sdk: openai.OpenAI):
    with open(clip("en/jfk.flac"), "rb") as f:
        verbose = sdk.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json"
        )
    assert verbose.duration == pytest.approx(11.0, abs=0.1)
    assert verbose.segments and verbose.segments[0].start == 0.0
    with open(clip("en/jfk.flac"), "rb") as f:
        subtitles = sdk.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="srt"
        )
    assert str(subtitles).startswith("1\n00:00:00,000 --> ")
    with open(clip("en/jfk.flac"), "rb") as f:
        cues = sdk.audio.transcriptions.create(model="whisper-1", file=f, response_format="vtt")
    assert str(cues).startswith("WEBVTT")


def test_transcription_stream(sdk: openai.OpenAI):
    with open(clip("en/jfk.flac"), "rb") as f:
        stream = sdk.audio.transcriptions.create(model="whisper-1", file=f, stream=True)
        events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[-1] == "transcript.text.done" and "transcript.text.delta" in kinds
    assert wer([JFK], [events[-1].text]) <= 0.1


def test_translation_to_english(sdk: openai.OpenAI):
    path = clip("zh/firered_TEST_MEETING_T0000000001_S00000.wav")
    with open(path, "rb") as f:
        result = sdk.audio.translations.create(model="whisper-1", file=f)
    assert is_english(result.text), result.text


def test_chat_with_input_audio(sdk: openai.OpenAI):
    data = base64.b64encode(clip("en/jfk.flac").read_bytes()).decode()
    reply = sdk.chat.completions.create(
        model=sdk.models.list().data[0].id,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What does the speaker ask of his fellow Americans?"},
                    {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}},
                ],
            }
        ],
    )
    assert reply.choices[0].message.content.strip()
    # finish_reason is always "stop" (api/openai_audio.py writes it; a cut answer is an error
    # instead), so check what the service computed: the usage of the calls it made.
    usage = reply.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_models_and_errors(sdk: openai.OpenAI, server: str):
    assert sdk.models.list().data[0].id
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.audio.transcriptions.create(model="whisper-1", file=("a.mp3", b"not audio at all"))
    assert caught.value.body["code"] == "invalid_audio"
    r = httpx.post(
        f"{server}/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    malformed = {"messages": [{"role": "user", "content": [1, {"type": "input_audio"}]}]}
    r = httpx.post(f"{server}/v1/chat/completions", json=malformed)
    assert r.status_code == 400 and r.json()["error"]["param"].startswith("messages")
