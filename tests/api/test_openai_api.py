"""The official openai SDK, unchanged, against our /v1 endpoints.

The SDK's calls run on a scripted engine (no model): their subject is that the SDK's
requests are understood and its responses parse. Each window's answer describes the audio
it held (``heard 11.00 s, rms 1234``). What the model says (a translation is English) is
checked at the end, on the embedded engine.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

import httpx
import openai
import pytest

from stepaudio.params import Mode
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_scripted
from tests.helpers import clip, is_english

HEARD_JFK = re.compile(r"heard 11\.0\d s, rms \d+")
"""What the scripted engine answers for JFK's 11 seconds."""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ScriptedEngine]]:
    with serve_scripted(tmp_path_factory.mktemp("openai-sdk"), ScriptedEngine()) as served:
        yield served


@pytest.fixture
def scripted(service: tuple[str, ScriptedEngine]) -> tuple[str, ScriptedEngine]:
    """The scripted service, its engine with no job recorded yet."""
    url, engine = service
    engine.windows.clear()
    engine.texts.clear()
    return url, engine


@pytest.fixture
def sdk(scripted: tuple[str, ScriptedEngine]) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{scripted[0]}/v1", api_key="unused", max_retries=0)


# -- the SDK's calls, on the scripted engine ---------------------------------------------


def test_transcription_json_and_text(sdk: openai.OpenAI, scripted):
    _, engine = scripted
    with open(clip("en/jfk.flac"), "rb") as f:
        result = sdk.audio.transcriptions.create(model="whisper-1", file=f, language="en")
    assert HEARD_JFK.fullmatch(result.text), result.text
    [job] = engine.windows
    assert job.mode is Mode.ASR and job.params.language == "en"
    with open(clip("en/jfk.flac"), "rb") as f:
        text = sdk.audio.transcriptions.create(model="whisper-1", file=f, response_format="text")
    assert str(text).strip() == result.text
    assert len(engine.windows) == 2


def test_transcription_verbose_json_srt_vtt(sdk: openai.OpenAI):
    with open(clip("en/jfk.flac"), "rb") as f:
        verbose = sdk.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json"
        )
    assert verbose.duration == pytest.approx(11.0, abs=0.1)
    assert verbose.segments and verbose.segments[0].start == 0.0
    assert HEARD_JFK.fullmatch(verbose.segments[0].text.strip())
    with open(clip("en/jfk.flac"), "rb") as f:
        subtitles = sdk.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="srt"
        )
    assert str(subtitles).startswith("1\n00:00:00,000 --> ")
    with open(clip("en/jfk.flac"), "rb") as f:
        cues = sdk.audio.transcriptions.create(model="whisper-1", file=f, response_format="vtt")
    assert str(cues).startswith("WEBVTT")


def test_transcription_stream(sdk: openai.OpenAI, scripted):
    _, engine = scripted
    with open(clip("en/jfk.flac"), "rb") as f:
        stream = sdk.audio.transcriptions.create(model="whisper-1", file=f, stream=True)
        events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[-1] == "transcript.text.done" and "transcript.text.delta" in kinds
    assert HEARD_JFK.fullmatch(events[-1].text), events[-1].text
    deltas = "".join(e.delta for e in events if e.type == "transcript.text.delta")
    assert deltas.strip() == events[-1].text
    assert len(engine.windows) == 1


def test_chat_with_input_audio(sdk: openai.OpenAI, scripted):
    _, engine = scripted
    question = "What does the speaker ask of his fellow Americans?"
    data = base64.b64encode(clip("en/jfk.flac").read_bytes()).decode()
    reply = sdk.chat.completions.create(
        model=sdk.models.list().data[0].id,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": question},
                    {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}},
                ],
            }
        ],
    )
    # The audio is transcribed, then one text call answers the question on the transcript:
    # the reply is that call's answer.
    [job] = engine.windows
    assert job.mode is Mode.ASR
    [text_job] = engine.texts
    assert question in text_job.prompt and HEARD_JFK.search(text_job.prompt)
    assert reply.choices[0].message.content.strip()
    assert reply.choices[0].message.content == engine.on_text(text_job).text
    # finish_reason is always "stop" (api/openai_audio.py writes it; a cut answer is an error
    # instead), so check what the service computed: the usage of the calls it made.
    usage = reply.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # The window's (1 prompt token, 5 words) and the text call's (1, 1).
    assert (usage.prompt_tokens, usage.completion_tokens) == (2, 6)


def test_models_and_errors(sdk: openai.OpenAI, scripted):
    server, engine = scripted
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
    assert engine.windows == [] and engine.texts == []


# -- the model's words, on the embedded engine -------------------------------------------


def test_translation_to_english(server: str):
    sdk = openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)
    path = clip("zh/firered_TEST_MEETING_T0000000001_S00000.wav")
    with open(path, "rb") as f:
        result = sdk.audio.translations.create(model="whisper-1", file=f)
    assert is_english(result.text), result.text
