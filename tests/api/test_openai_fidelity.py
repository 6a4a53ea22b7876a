"""/v1 as OpenAI defines it (issue 15): every response format and stream event checked
strictly against the official SDK's own types, usage, errors in the client's terms,
streamed deltas that add up to the final text in every language, models that exist, the
request's temperature honoured, and parameters we cannot honour refused by name.

The service runs on a scripted engine (no model): the subject is the face, not the
model's words. Its windows answer like Whisper would, with Whisper's per-segment measures
(``whisperlike``): what the face reports must be what the engine gave. The tests whose
subject is the model (Whisper's own measures, the prompt's effect, an English translation)
are at the end, on the embedded engine.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import openai
import pytest
from openai.types.audio import (
    Transcription,
    TranscriptionSegment,
    TranscriptionTextDeltaEvent,
    TranscriptionTextDoneEvent,
    TranscriptionVerbose,
    Translation,
    TranslationVerbose,
)
from pydantic import BaseModel

from stepaudio.api import create_app
from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.config import Settings
from stepaudio.params import Mode
from stepaudio.testing.encode import write_audio
from stepaudio.testing.longaudio import build, load_pcm
from stepaudio.testing.scripted import (
    AVG_LOGPROB,
    COMPRESSION_RATIO,
    NO_SPEECH_PROB,
    ScriptedEngine,
    whisperlike,
)
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip, is_english

JFK = clip("en/jfk.flac")
ZH = clip("zh/thchs30_A11_0.wav")
SEGMENT_FIELDS = set(TranscriptionSegment.model_fields)
M = TypeVar("M", bound=BaseModel)
SHORT = clip("en/sense_and_sensibility_0880.wav")  # 3 s: one window, few tokens
# How each plain-text format begins: text (the transcript), SubRip's first cue, WebVTT.
SUBTITLE_HEADS = {
    "text": re.compile(r"\S"),
    "srt": re.compile(r"1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n\S"),
    "vtt": re.compile(r"WEBVTT\n\n(\d\d:)?\d\d:\d\d\.\d{3} --> "),
}


def strict(model: type[M], body: dict) -> M:
    """``body`` as the SDK's ``model``, validated strictly (no coercion: a number sent as
    a string fails); fields the SDK does not declare are allowed, as it allows them."""
    return model.model_validate(body, strict=True)


@dataclass
class Scripted:
    url: str
    settings: Settings
    engine: ScriptedEngine


def scripted_service(data_dir: Path, window_s: float = 30.0) -> Iterator[Scripted]:
    settings = Settings(data_dir=data_dir, _env_file=None)
    engine = ScriptedEngine(on_window=whisperlike, window_s=window_s)
    with serve_in_thread(create_app(settings, engine=engine), settings=settings) as url:
        yield Scripted(url, settings, engine)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scripted]:
    yield from scripted_service(tmp_path_factory.mktemp("fidelity"))


@pytest.fixture
def web(service: Scripted) -> Iterator[httpx.Client]:
    """A client of the scripted service, its engine with no job recorded yet."""
    service.engine.windows.clear()
    service.engine.texts.clear()
    with httpx.Client(base_url=service.url, timeout=60) as c:
        yield c


@pytest.fixture
def sdk(service: Scripted) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{service.url}/v1", api_key="unused", max_retries=0)


def heard(text: str) -> float:
    """The seconds a scripted window's answer says it heard."""
    found = re.fullmatch(r"heard (\S+) s, rms \d+", text.strip())
    assert found, text
    return float(found[1])


def seconds_of(path: Path) -> float:
    return len(load_pcm(path)) / SAMPLE_RATE


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


def check_segments(body: dict, *, whisper: bool = True) -> None:
    """Every field the SDK declares on every segment; with ``whisper``, Whisper's own
    measures (a translation by the text model has neutral ones: they would not be the
    translation's)."""
    assert body["segments"]
    for i, segment in enumerate(body["segments"]):
        # Written out, not filled by the SDK's defaults.
        assert set(segment) >= SEGMENT_FIELDS and segment["id"] == i
    if not whisper:
        return
    # The embedded Whisper's own measures, not placeholders.
    assert any(s["avg_logprob"] < 0 for s in body["segments"])
    assert all(s["tokens"] and 0 <= s["no_speech_prob"] <= 1 for s in body["segments"])
    assert all(s["compression_ratio"] > 0 for s in body["segments"])


def check_scripted_segments(body: dict) -> None:
    """Every field the SDK declares on every segment, and the engine's own measures
    (``whisperlike``'s), not placeholders."""
    check_segments(body, whisper=False)
    for s in body["segments"]:
        assert (s["avg_logprob"], s["compression_ratio"], s["no_speech_prob"]) == (
            AVG_LOGPROB,
            COMPRESSION_RATIO,
            NO_SPEECH_PROB,
        )
        assert s["tokens"] == list(range(len(s["text"].strip())))


def test_transcription_formats_are_the_sdks_types(web: httpx.Client, service: Scripted):
    settings = service.settings
    r = post(web, settings, "transcriptions", JFK, model="whisper-1", response_format="json")
    assert r.status_code == 200
    plain = strict(Transcription, r.json())
    assert heard(plain.text) == pytest.approx(11.0, abs=0.05)
    # Usage as OpenAI bills whisper-1: the audio's whole seconds, rounded up.
    assert plain.usage is not None and plain.usage.type == "duration"
    assert r.json()["usage"] == {"type": "duration", "seconds": 11}

    r = post(
        web, settings, "transcriptions", JFK, model="whisper-1", response_format="verbose_json"
    )
    body = r.json()
    verbose = strict(TranscriptionVerbose, body)
    assert verbose.language == "en" and verbose.duration == pytest.approx(11.0, abs=0.1)
    assert body["usage"] == {"type": "duration", "seconds": math.ceil(verbose.duration)}
    check_scripted_segments(body)
    assert verbose.segments and verbose.segments[0].seek == 0
    assert verbose.text == plain.text

    for fmt, head in SUBTITLE_HEADS.items():
        r = post(web, settings, "transcriptions", JFK, model="whisper-1", response_format=fmt)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/")
        assert head.match(r.text)
        # Every word, in order, across the cues (a cue lasts 7 s at most).
        said = [ln for ln in r.text.splitlines() if ln and "-->" not in ln and not ln.isdigit()]
        assert " ".join(said).split() == (["WEBVTT"] if fmt == "vtt" else []) + plain.text.split()
    assert len(service.engine.windows) == 2 + len(SUBTITLE_HEADS)
    assert {job.mode for job in service.engine.windows} == {Mode.ASR}


def test_translation_formats_are_the_sdks_types(web: httpx.Client, service: Scripted):
    settings = service.settings
    form = {"model": "whisper-1", "language": "zh"}
    r = post(web, settings, "translations", ZH, response_format="json", **form)
    assert r.status_code == 200
    text = strict(Translation, r.json()).text
    assert heard(text) == pytest.approx(seconds_of(ZH), abs=0.05)
    # Translated into English, by a translate window.
    job = service.engine.windows[-1]
    assert job.mode is Mode.TRANSLATE and job.params.target_lang.lower() in ("en", "english")

    r = post(web, settings, "translations", ZH, response_format="verbose_json", **form)
    body = r.json()
    verbose = strict(TranslationVerbose, body)
    assert verbose.text.strip() and verbose.language == "zh"
    check_segments(body, whisper=False)

    for fmt, head in SUBTITLE_HEADS.items():
        r = post(web, settings, "translations", ZH, response_format=fmt, **form)
        assert r.status_code == 200 and head.match(r.text.strip()), (fmt, r.text)
    assert {job.mode for job in service.engine.windows} == {Mode.TRANSLATE}


def sse(response: httpx.Response) -> list[dict]:
    lines = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_stream_events_are_the_sdks_types(web: httpx.Client, service: Scripted):
    r = post(web, service.settings, "transcriptions", JFK, model="whisper-1", stream="true")
    events = sse(r)
    deltas = [strict(TranscriptionTextDeltaEvent, e) for e in events[:-1]]
    done = strict(TranscriptionTextDoneEvent, events[-1])
    assert deltas and "".join(d.delta for d in deltas) == done.text
    assert heard(done.text) == pytest.approx(11.0, abs=0.05)
    # The only usage the SDK declares on this event is OpenAI's token-billed kind.
    assert done.usage is not None and done.usage.type == "tokens"
    assert done.usage.input_tokens == 11 * 50  # Whisper's encoder positions, 50 a second
    details = done.usage.input_token_details
    assert details is not None and details.audio_tokens == 11 * 50 and details.text_tokens == 0
    # The engine's own tokens (whisperlike's: one per character).
    assert done.usage.output_tokens == len(done.text.strip())
    assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens
    assert events[-1]["usage"]["seconds"] == 11  # and the duration json reports


def test_undecodable_upload_names_the_clients_file(web: httpx.Client, service: Scripted):
    for stream in ("false", "true"):
        r = web.post(
            "/v1/audio/transcriptions",
            files={"file": ("talk.mp3", b"not audio at all")},
            data={"model": "whisper-1", "stream": stream},
        )
        error = ours(r, service.settings.data_dir).json()["error"]
        assert r.status_code == 400 and error["code"] == "invalid_audio"
        # The form's field is `file` here; the message names the client's file, not ours.
        assert error["param"] == "file"
        assert "/" not in error["message"] and "talk.mp3" in error["message"]
    # The seed's route names its own field, and no path either.
    r = web.post("/api/process", files={"audio": ("talk.mp3", b"not audio")}, data={})
    error = ours(r, service.settings.data_dir).json()["error"]
    assert r.status_code == 400 and error["param"] == "audio"
    assert service.engine.windows == []


def test_unknown_model_is_404(sdk: openai.OpenAI, web: httpx.Client, service: Scripted):
    with pytest.raises(openai.NotFoundError) as caught, open(JFK, "rb") as f:
        sdk.audio.transcriptions.create(model="JackFram/llama-68m", file=f)
    assert caught.value.body["code"] == "model_not_found"
    assert caught.value.body["param"] == "model"
    with pytest.raises(openai.NotFoundError), open(ZH, "rb") as f:
        sdk.audio.translations.create(model="gpt-4o-transcribe", file=f)
    assert service.engine.windows == []
    # Every listed name is accepted (and whisper-1 is one of them).
    listed = [m.id for m in sdk.models.list().data]
    assert "whisper-1" in listed and len(listed) == len(set(listed))
    short = clip("zh/wenet_nst_ID001.wav")
    for name in listed:
        r = post(web, service.settings, "transcriptions", short, model=name, response_format="text")
        assert r.status_code == 200, (name, r.text)
    assert len(service.engine.windows) == len(listed)


@pytest.fixture(scope="module")
def windowed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scripted]:
    """A server cutting ASR windows at 10 s (the shortest the embedded engine allows)."""
    yield from scripted_service(tmp_path_factory.mktemp("windowed"), window_s=10)


def test_stream_deltas_add_up_to_the_chinese_text(windowed: Scripted, tmp_path: Path):
    clips = [
        clip("zh/firered_TEST_MEETING_T0000000001_S00000.wav"),
        clip("zh/thchs30_A11_0.wav"),
        clip("zh/aishell-BAC009S0724W0121.wav"),
        clip("zh/firered_BAC009S0764W0121.wav"),
    ]
    pcm, _ = build(clips, min_seconds=30)
    path = write_audio(pcm, tmp_path / "meeting.wav")
    with httpx.Client(base_url=windowed.url, timeout=300) as client:
        r = post(client, windowed.settings, "transcriptions", path, language="zh", stream="true")
        events = sse(r)
        final = post(client, windowed.settings, "transcriptions", path, language="zh")
    deltas = [e["delta"] for e in events if e["type"] == "transcript.text.delta"]
    done = events[-1]
    assert done["type"] == "transcript.text.done" and len(deltas) >= 3  # several windows
    assert "".join(deltas) == done["text"] == final.json()["text"]
    # Chinese windows, joined as Chinese (no spaces between them), in audio order.
    windows = re.findall(r"听到(\d+\.\d\d)秒。", done["text"])
    assert len(windows) == len(deltas) and " " not in done["text"]
    assert sum(map(float, windows)) == pytest.approx(len(pcm) / SAMPLE_RATE, abs=0.1)


def verbose(client: httpx.Client, settings: Settings, route: str, path: Path, **form) -> dict:
    r = post(client, settings, route, path, response_format="verbose_json", **form)
    assert r.status_code == 200, r.text
    return r.json()


def test_temperature_reaches_whisper(web: httpx.Client, service: Scripted):
    """Greedy at 0, sampled when asked: the request's temperature reaches the engine, and
    every segment says the temperature the engine decoded it at (on the embedded engine,
    faster-whisper's own record: ``test_whispers_own_measures``)."""
    engine, settings = service.engine, service.settings
    greedy = [verbose(web, settings, "transcriptions", SHORT, temperature="0") for _ in "ab"]
    assert greedy[0]["segments"] == greedy[1]["segments"]
    assert {s["temperature"] for s in greedy[0]["segments"]} == {0.0}
    sampled = verbose(web, settings, "transcriptions", SHORT, temperature="1.0")
    assert {s["temperature"] for s in sampled["segments"]} == {1.0}
    # The seed's route passes it the same way.
    with open(SHORT, "rb") as f:
        r = web.post("/api/process", files={"audio": f}, data={"mode": "asr", "temperature": 1})
    assert r.status_code == 200 and {s["temperature"] for s in r.json()["segments"]} == {1.0}
    assert [job.params.temperature for job in engine.windows] == [0.0, 0.0, 1.0, 1.0]


def test_prompt_reaches_whisper(web: httpx.Client, service: Scripted):
    """OpenAI's ``prompt`` is Whisper's initial prompt: it reaches the engine's window as
    written (its effect on the transcript: ``test_prompt_guides_whispers_spelling``)."""
    prompt = "hello my friends and fellow americans i say ask not what"

    def text(**extra: str) -> str:
        with open(JFK, "rb") as f:
            r = web.post(
                "/v1/audio/transcriptions",
                files={"file": f},
                data={"model": "whisper-1", "language": "en", "temperature": "0", **extra},
            )
        assert r.status_code == 200, r.text
        return r.json()["text"]

    assert heard(text()) == pytest.approx(11.0, abs=0.05)
    assert heard(text(prompt=prompt)) == pytest.approx(11.0, abs=0.05)
    assert [job.params.prompt for job in service.engine.windows] == [None, prompt]
    # A prompt is a hint, not a document: past 2,000 characters it is refused by name.
    with open(JFK, "rb") as f:
        r = web.post(
            "/v1/audio/transcriptions",
            files={"file": f},
            data={"model": "whisper-1", "prompt": "x" * 2001},
        )
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt", r.text
    assert len(service.engine.windows) == 2


UNSUPPORTED = {
    # vLLM's sampling extensions, and OpenAI chat fields that mean nothing here.
    "use_beam_search": "true",
    "n": "2",
    "top_k": "12",
    "top_p": "0.4",
    "min_p": "0.5",
    "seed": "42",
    "frequency_penalty": "1.8",
    "presence_penalty": "2.0",
    "repetition_penalty": "1.3",
    "max_completion_tokens": "1",
    "to_language": "es",
    "vllm_xargs": '{"a": 1}',
    "stream_include_usage": "true",
    "Model": "whisper-1",  # names are exact: a near miss is not silently dropped
    "x" * 500: "1",
}


@pytest.mark.parametrize("route", ["transcriptions", "translations"])
def test_unsupported_parameters_are_refused_by_name(
    web: httpx.Client, service: Scripted, route: str
):
    settings = service.settings
    for name, value in UNSUPPORTED.items():
        r = post(web, settings, route, SHORT, model="whisper-1", **{name: value})
        error = r.json()["error"]
        assert r.status_code == 400 and error["code"] == "unknown_parameter", (name, r.text)
        assert error["param"] == name[:64] and error["param"] in error["message"]
        assert len(error["message"]) < 1000
    # OpenAI's own fields we can honour only in part.
    refused = [
        ("transcriptions", {"include[]": "logprobs"}, "include[]"),
        ("transcriptions", {"include": "logprobs"}, "include"),
        ("transcriptions", {"chunking_strategy": "server_vad"}, "chunking_strategy"),
        ("transcriptions", {"chunking_strategy[type]": "server_vad"}, "chunking_strategy"),
        ("translations", {"timestamp_granularities[]": "segment"}, "timestamp_granularities[]"),
    ]
    for where, form, param in refused:
        if where != route:
            continue
        r = post(web, settings, route, SHORT, model="whisper-1", **form)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, (form, r.text)
    assert service.engine.windows == []
    # An accepted value goes through.
    ok = {"chunking_strategy": "auto"} if route == "transcriptions" else {"language": "en"}
    r = post(web, settings, route, SHORT, model="whisper-1", response_format="text", **ok)
    assert r.status_code == 200 and heard(r.text) == pytest.approx(seconds_of(SHORT), abs=0.05)
    assert len(service.engine.windows) == 1


def test_sdk_hears_unsupported_parameters(sdk: openai.OpenAI, service: Scripted):
    """What a vLLM client sends through the official SDK's ``extra_body``, and the SDK's
    own ``include``/``chunking_strategy``, all arrive as fields and are refused by name."""
    cases = [
        ({"extra_body": {"use_beam_search": True}}, "use_beam_search"),
        ({"extra_body": {"seed": 42}}, "seed"),
        ({"include": ["logprobs"]}, "include[]"),
        ({"chunking_strategy": {"type": "server_vad", "threshold": 0.5}}, "chunking_strategy"),
    ]
    service.engine.windows.clear()
    for extra, param in cases:
        with pytest.raises(openai.BadRequestError) as caught, open(SHORT, "rb") as f:
            sdk.audio.transcriptions.create(model="whisper-1", file=f, **extra)
        assert caught.value.body["param"] == param, (extra, caught.value.body)
    assert service.engine.windows == []


def audio_part(path: Path) -> dict:
    data = base64.b64encode(path.read_bytes()).decode()
    return {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}


def chat(client: httpx.Client, body: dict) -> httpx.Response:
    return client.post("/v1/chat/completions", json=body)


def test_chat_refuses_in_the_clients_terms(web: httpx.Client, service: Scripted):
    audio = audio_part(SHORT)
    ask = {"type": "text", "text": "What is said?"}
    r = chat(
        web, {"model": "JackFram/llama-68m", "messages": [{"role": "user", "content": [audio]}]}
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    assert r.json()["error"]["param"] == "model"
    bad = [
        # (message content, the param the error must name)
        (
            [ask, {"type": "input_audio", "input_audio": {"data": "%%%"}}],
            "messages[0].content[1].input_audio.data",
        ),
        (
            [ask, {"type": "input_audio", "input_audio": {"format": "wav"}}],
            "messages[0].content[1].input_audio.data",
        ),
        ([ask, {"type": "input_audio"}], "messages[0].content[1].input_audio"),
        (
            [ask, {"type": "image_url", "image_url": {"url": "http://x/y.png"}}],
            "messages[0].content[1].type",
        ),
        ([audio, audio], "messages[0].content[1].input_audio"),
        ([ask], "messages"),
        ([7], "messages[0].content[0]"),
    ]
    for content, param in bad:
        r = chat(web, {"messages": [{"role": "user", "content": content}]})
        error = ours(r, service.settings.data_dir).json()["error"]
        assert r.status_code == 400 and error["param"] == param, (param, r.text[:300])
    for name, value in {"seed": 1, "n": 2, "logprobs": True, "tools": [], "stop": ["x"]}.items():
        r = chat(web, {"messages": [{"role": "user", "content": [audio]}], name: value})
        error = r.json()["error"]
        assert r.status_code == 400 and error["param"] == name, (name, r.text[:300])
    assert service.engine.windows == [] and service.engine.texts == []


def test_chat_stream_usage_when_asked(web: httpx.Client, service: Scripted):
    listed = web.get("/v1/models").json()["data"][0]["id"]
    body = {
        "model": listed,
        "messages": [{"role": "user", "content": [audio_part(SHORT)]}],
        "mode": "asr",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    chunks = sse(chat(web, body))
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == listed for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert heard(text) == pytest.approx(seconds_of(SHORT), abs=0.05)
    [job] = service.engine.windows
    assert job.mode is Mode.ASR
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == [] and set(usage) == {
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
    }
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # Without stream_options, no usage chunk (as OpenAI).
    del body["stream_options"]
    assert all(c["choices"] for c in sse(chat(web, body)))


# -- the model's words and measures, on the embedded engine ------------------------------


@pytest.mark.heavy
def test_translation_is_english(client: httpx.Client, settings: Settings):
    r = post(client, settings, "translations", ZH, model="whisper-1", response_format="json")
    assert r.status_code == 200
    text = strict(Translation, r.json()).text
    assert is_english(text), text


def test_whispers_own_measures(client: httpx.Client, settings: Settings):
    """The embedded Whisper's own measures in verbose_json, and faster-whisper's record of
    the temperature it decoded at (greedy at 0: the same answer twice)."""
    body = verbose(client, settings, "transcriptions", JFK, model="whisper-1")
    assert "your country" in body["text"].lower()
    check_segments(body)
    greedy = [verbose(client, settings, "transcriptions", SHORT, temperature="0") for _ in "ab"]
    assert greedy[0]["segments"] == greedy[1]["segments"]
    assert {s["temperature"] for s in greedy[0]["segments"]} == {0.0}
    sampled = verbose(client, settings, "transcriptions", SHORT, temperature="1.0")
    assert {s["temperature"] for s in sampled["segments"]} == {1.0}


def test_prompt_guides_whispers_spelling(client: httpx.Client):
    """OpenAI's ``prompt`` is Whisper's initial prompt: written without capitals or
    punctuation, the transcript follows its style (JFK without a prompt: "And so my fellow
    Americans ask not ...")."""

    def text(**extra: str) -> str:
        with open(clip("en/jfk.flac"), "rb") as f:
            r = client.post(
                "/v1/audio/transcriptions",
                files={"file": f},
                data={"model": "whisper-1", "language": "en", "temperature": "0", **extra},
            )
        assert r.status_code == 200, r.text
        return r.json()["text"]

    assert "Americans" in text()
    guided = text(prompt="hello my friends and fellow americans i say ask not what")
    assert "country" in guided and guided == guided.lower(), guided
