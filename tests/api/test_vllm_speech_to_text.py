"""vLLM's own speech-to-text tests, rewritten to run against our /v1 on loopback.

Ported from the public repository vllm-project/vllm (Apache-2.0; rewritten here, not
copied), directory tests/entrypoints/openai/speech_to_text/:

- test_transcription_validation_whisper.py at 03ef2ccabefe76c6a1b13404c5a1d4ffa6c579d5
- test_translation_validation.py at a21d54590c14abf3202bf91eb44fa8589b7d1d9c
- test_transcription_validation.py at 5701741465c9228bb652785499d68aaa107ae8dd
- test_transcription_inter_chunk_spacing.py at a077266da4e9a691a5ed6a498b8d161f42c853ff

One test here per upstream test, named ``test_<file>__<upstream test>`` (file: whisper,
translation, validation, spacing), keeping what each asserts. Their recordings are
swapped for ours: "Mary had a little lamb" -> JFK's "ask not what your country can do for
you" (11 s), the "winning call" -> a LibriSpeech clip, Foscolo's Italian -> Mandarin.
Where upstream asserts vLLM's own dialect (a JSON body for ``response_format=text``,
chat-style stream chunks, its sampling extensions, LoRA aliases), the test asserts what
we document for the same request instead: OpenAI's plain text and
``transcript.text.*`` events, and 400 ``unknown_parameter`` naming each parameter we
cannot honour.

These tests are about the API: they run on a scripted engine (no model) whose windows
answer as Whisper does (``whisperlike``: the window described, ``heard 11.00 s, rms
1234``, or in Chinese for a Mandarin transcript, with Whisper's per-segment measures), so
each can still tell which audio was sent with which parameters. The upstream tests whose
subject is the model's words (a prompt that must not cost the transcript its beginning,
language detection, Mandarin transcripts, translations that say what was said, long
recordings said once each) are at the end, on the embedded engine, with Whisper greedy
(beam 1).
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import zhconv

from stepaudio.api import create_app
from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.config import Settings
from stepaudio.engines.base import Engine, ModelOutput, WindowJob
from stepaudio.engines.embedded import EmbeddedEngine
from stepaudio.errors import InvalidParameter
from stepaudio.params import Mode
from stepaudio.testing.encode import write_audio
from stepaudio.testing.longaudio import build, load_pcm
from stepaudio.testing.scripted import (
    AVG_LOGPROB,
    COMPRESSION_RATIO,
    ScriptedEngine,
)
from stepaudio.testing.scripted import whisperlike as scripted_whisperlike
from stepaudio.testing.server import serve_in_thread
from stepaudio.text import join_texts
from tests.helpers import clip, is_english, normalize_en, normalize_zh

pytestmark = pytest.mark.anyio

MARY = clip("en/jfk.flac")  # upstream's mary_had_lamb
MARY_SAYS = "ask not what your country can do for you"
WINNING_CALL = clip("en/librispeech-1995-1837-0001.wav")
WINNING_SAYS = "first great sorrow"
FOSCOLO = clip("zh/firered_BAC009S0764W0121.wav")  # upstream's Italian; ours is Mandarin
FOSCOLO_SAYS = "交易几乎停"  # "trade almost stalled"
SHORT = clip("en/sense_and_sensibility_0880.wav")  # "He was not an ill disposed young man"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def whisperlike(job: WindowJob) -> ModelOutput:
    """The window described, after a space, as Whisper writes a segment."""
    return scripted_whisperlike(job, leading_space=True)


def heard(text: str) -> float:
    """The seconds a scripted window's answer says it heard."""
    found = re.fullmatch(r"heard (\S+) s, rms \d+", str(text).strip())
    assert found, text
    return float(found[1])


def seconds_of(path: Path) -> float:
    return len(load_pcm(path)) / SAMPLE_RATE


def _serve(tmp: Path, engine: Engine, window_s: float) -> Iterator[str]:
    settings = Settings(data_dir=tmp, asr_window_s=window_s, _env_file=None)
    with serve_in_thread(create_app(settings, engine=engine), settings=settings) as url:
        yield url


@pytest.fixture(scope="module")
def scripted() -> ScriptedEngine:
    """The engine of ``greedy_server``: windows of 300 s, as the service's embedded
    engine cuts them; 50 ms a window, so concurrent requests are in flight together."""
    return ScriptedEngine(on_window=whisperlike, window_s=300, delay_s=0.05)


@pytest.fixture(scope="module")
def greedy_server(
    tmp_path_factory: pytest.TempPathFactory, scripted: ScriptedEngine
) -> Iterator[str]:
    """Our service as ``server`` (tests/conftest.py) runs it, on the scripted engine."""
    yield from _serve(tmp_path_factory.mktemp("vllm-port"), scripted, 300)


@pytest.fixture(scope="module")
def chunked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Windows of 10 s (the shortest allowed): a short recording spans several, as
    upstream's 5-s chunks do in the spacing tests."""
    engine = ScriptedEngine(on_window=whisperlike, window_s=10)
    yield from _serve(tmp_path_factory.mktemp("vllm-chunks"), engine, 10)


@pytest.fixture
async def whisper_client(greedy_server: str, scripted: ScriptedEngine):
    scripted.windows.clear()
    async with openai.AsyncOpenAI(
        base_url=f"{greedy_server}/v1", api_key="unused", max_retries=0, timeout=60
    ) as client:
        yield client


MODEL = "whisper-1"


async def _json(client: openai.AsyncOpenAI, path: Path, **kw) -> dict:
    """A transcription's ``json`` body, raw (text and usage)."""
    raw = await client.audio.transcriptions.with_raw_response.create(
        model=MODEL, file=path, response_format="json", **kw
    )
    return json.loads(raw.text)


def _refused(caught: pytest.ExceptionInfo[openai.BadRequestError], param: str) -> None:
    body = caught.value.body
    assert isinstance(body, dict) and body["param"] == param, body
    assert body["code"] in ("unknown_parameter", "unsupported_value")


# --- test_transcription_validation_whisper.py --------------------------------------


async def test_whisper__test_basic_audio(
    whisper_client: openai.AsyncOpenAI, scripted: ScriptedEngine
):
    # Upstream reads text and usage out of a JSON body sent for response_format=text
    # (vLLM's dialect): ours answers text with the text, and json carries the usage.
    text = await whisper_client.audio.transcriptions.create(
        model=MODEL, file=MARY, language="en", response_format="text", temperature=0.0
    )
    assert heard(text) == pytest.approx(11.0, abs=0.05)
    with pytest.raises(json.JSONDecodeError):
        json.loads(str(text))
    body = await _json(whisper_client, MARY, language="en", temperature=0.0)
    assert body["text"] == str(text).strip()
    assert body["usage"] == {"type": "duration", "seconds": 11}
    assert [(j.mode, j.params.language) for j in scripted.windows] == [(Mode.ASR, "en")] * 2


async def test_whisper__test_basic_audio_batched(
    whisper_client: openai.AsyncOpenAI, scripted: ScriptedEngine
):
    first, second = await asyncio.gather(
        whisper_client.audio.transcriptions.create(
            model=MODEL, file=MARY, language="en", response_format="text", temperature=0.0
        ),
        whisper_client.audio.transcriptions.create(
            model=MODEL, file=WINNING_CALL, language="en", response_format="text", temperature=0
        ),
    )
    # Each answer is its own recording's.
    assert heard(first) == pytest.approx(seconds_of(MARY), abs=0.05)
    assert heard(second) == pytest.approx(seconds_of(WINNING_CALL), abs=0.05)
    assert len(scripted.windows) == 2


def refuse_unknown_language(job: WindowJob) -> ModelOutput:
    """Whisper's answer to a language code it does not know (engines/whisper.py)."""
    if job.params.language not in (None, "en", "zh"):
        raise InvalidParameter(
            f"'{job.params.language}' is not a valid language code", param="language"
        )
    return whisperlike(job)


async def test_whisper__test_bad_requests(
    whisper_client: openai.AsyncOpenAI, scripted: ScriptedEngine, monkeypatch
):
    # The language code is Whisper's to judge: its refusal is the client's 400.
    monkeypatch.setattr(scripted, "on_window", refuse_unknown_language)
    with pytest.raises(openai.BadRequestError) as caught:
        await whisper_client.audio.transcriptions.create(
            model=MODEL, file=SHORT, language="hh", temperature=0.0
        )
    assert caught.value.body["param"] == "language"
    assert [j.params.language for j in scripted.windows] == ["hh"]  # asked once, not retried


async def test_whisper__test_invalid_audio_file(whisper_client: openai.AsyncOpenAI):
    with pytest.raises(openai.BadRequestError) as caught:
        await whisper_client.audio.transcriptions.create(
            model=MODEL, file=("invalid.wav", b"not a valid audio file"), language="en"
        )
    assert caught.value.status_code == 400
    # Upstream checks vLLM's wording; ours names the client's file and the form field.
    assert caught.value.body["code"] == "invalid_audio" and caught.value.body["param"] == "file"
    assert "invalid.wav" in caught.value.message


async def test_whisper__test_completion_endpoints(whisper_client: openai.AsyncOpenAI):
    # Upstream: a speech model refuses chat (404). Ours chats about audio only: a chat
    # without an input_audio part is refused as a bad request, naming `messages`.
    with pytest.raises(openai.BadRequestError) as caught:
        await whisper_client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "system", "content": "You are a helpful assistant."}],
        )
    assert caught.value.body["param"] == "messages"
    # There is no text completion route: 404, as upstream.
    with pytest.raises(openai.NotFoundError):
        await whisper_client.completions.create(model=MODEL, prompt="Hello")


async def test_whisper__test_streaming_response(
    whisper_client: openai.AsyncOpenAI, scripted: ScriptedEngine
):
    whole = await whisper_client.audio.transcriptions.create(
        model=MODEL, file=WINNING_CALL, response_format="json", language="en", temperature=0.0
    )
    stream = await whisper_client.audio.transcriptions.create(
        model=MODEL, file=WINNING_CALL, language="en", temperature=0.0, stream=True
    )
    # Upstream reads vLLM's chat-style chunks; OpenAI's events carry `delta` instead.
    streamed = "".join([e.delta async for e in stream if e.type == "transcript.text.delta"])
    assert streamed == whole.text
    assert heard(streamed) == pytest.approx(seconds_of(WINNING_CALL), abs=0.05)
    assert len(scripted.windows) == 2


async def test_whisper__test_stream_options(
    whisper_client: openai.AsyncOpenAI, scripted: ScriptedEngine
):
    # vLLM's stream_include_usage/stream_continuous_usage_stats are not OpenAI's: refused
    # by name. Usage comes as OpenAI sends it: on the final event.
    for name in ("stream_include_usage", "stream_continuous_usage_stats"):
        with pytest.raises(openai.BadRequestError) as caught:
            await whisper_client.audio.transcriptions.create(
                model=MODEL, file=SHORT, stream=True, extra_body={name: True}
            )
        _refused(caught, name)
    assert scripted.windows == []
    stream = await whisper_client.audio.transcriptions.create(
        model=MODEL, file=SHORT, language="en", temperature=0.0, stream=True
    )
    events = [e async for e in stream]
    assert events[-1].type == "transcript.text.done" and events[-1].usage is not None
    assert events[-1].usage.input_tokens == int(np.ceil(seconds_of(SHORT) * 50))


async def test_whisper__test_sampling_params(
    whisper_client: openai.AsyncOpenAI, scripted: ScriptedEngine
):
    # vLLM's sampling extensions are refused, each by name.
    extras = {
        "seed": 42,
        "repetition_penalty": 1.9,
        "top_k": 12,
        "top_p": 0.4,
        "min_p": 0.5,
        "frequency_penalty": 1.8,
        "presence_penalty": 2.0,
    }
    for name, value in extras.items():
        with pytest.raises(openai.BadRequestError) as caught:
            await whisper_client.audio.transcriptions.create(
                model=MODEL, file=SHORT, language="en", extra_body={name: value}
            )
        _refused(caught, name)
    assert scripted.windows == []
    # Upstream asserts that extreme sampling changes the text; a sampled text may equal
    # the greedy one by chance, so ours checks what Whisper records: the temperature
    # every segment was decoded at.
    sampled = await whisper_client.audio.transcriptions.create(
        model=MODEL, file=SHORT, language="en", temperature=0.8, response_format="verbose_json"
    )
    greedy = await whisper_client.audio.transcriptions.create(
        model=MODEL, file=SHORT, language="en", temperature=0.0, response_format="verbose_json"
    )
    assert sampled.segments and all(s.temperature >= 0.8 for s in sampled.segments)
    assert greedy.segments and all(s.temperature == 0.0 for s in greedy.segments)
    assert [j.params.temperature for j in scripted.windows] == [0.8, 0.0]


async def test_whisper__test_audio_with_timestamp(whisper_client: openai.AsyncOpenAI):
    verbose = await whisper_client.audio.transcriptions.create(
        model=MODEL, file=MARY, language="en", response_format="verbose_json", temperature=0.0
    )
    assert verbose.segments
    assert verbose.segments[0].avg_logprob < 0 and verbose.segments[0].compression_ratio > 0
    # The engine's own measures, not placeholders.
    assert (verbose.segments[0].avg_logprob, verbose.segments[0].compression_ratio) == (
        AVG_LOGPROB,
        COMPRESSION_RATIO,
    )
    assert verbose.segments[0].start == 0.0
    assert verbose.segments[0].end == pytest.approx(seconds_of(MARY), abs=0.05)


async def test_whisper__test_audio_with_max_tokens(whisper_client: openai.AsyncOpenAI):
    # max_completion_tokens cuts vLLM's output; a transcript here is never cut short
    # (its length is the audio's), so the field is refused rather than ignored.
    for limit in (1, int(1e6)):
        with pytest.raises(openai.BadRequestError) as caught:
            await whisper_client.audio.transcriptions.create(
                model=MODEL, file=SHORT, response_format="text",
                extra_body={"max_completion_tokens": limit},
            )  # fmt: skip
        _refused(caught, "max_completion_tokens")


async def test_whisper__test_whisper_beam_search_single_beam(
    whisper_client: openai.AsyncOpenAI,
):
    # vLLM's beam-search switch: this service sets Whisper's beam size itself.
    with pytest.raises(openai.BadRequestError) as caught:
        await whisper_client.audio.transcriptions.create(
            model=MODEL, file=SHORT, language="en", response_format="text", temperature=0.0,
            extra_body={"use_beam_search": True, "n": 1},
        )  # fmt: skip
    _refused(caught, "use_beam_search")


async def test_whisper__test_whisper_beam_search_multibeam(whisper_client: openai.AsyncOpenAI):
    with pytest.raises(openai.BadRequestError) as caught:
        await whisper_client.audio.transcriptions.create(
            model=MODEL, file=SHORT, response_format="text", extra_body={"n": 2}
        )
    _refused(caught, "n")


async def test_whisper__test_stream_with_beams_raises(whisper_client: openai.AsyncOpenAI):
    with pytest.raises(openai.BadRequestError) as caught:
        await whisper_client.audio.transcriptions.create(
            model=MODEL, file=SHORT, language="en", stream=True,
            extra_body={"use_beam_search": True, "n": 2},
        )  # fmt: skip
    _refused(caught, "use_beam_search")


# --- test_translation_validation.py ------------------------------------------------


async def test_translation__test_non_asr_model(whisper_client: openai.AsyncOpenAI):
    with pytest.raises(openai.NotFoundError) as caught:
        await whisper_client.audio.translations.create(
            model="JackFram/llama-68m", file=SHORT, temperature=0.0
        )
    assert caught.value.body["code"] == "model_not_found"


async def test_translation__test_basic_audio_with_lora(whisper_client: openai.AsyncOpenAI):
    # Upstream serves a LoRA under the alias "speech" and asks for Spanish (to_language).
    # Neither exists here: the alias is an unknown model, to_language an unknown field.
    with pytest.raises(openai.NotFoundError):
        await whisper_client.audio.translations.create(model="speech", file=SHORT)
    with pytest.raises(openai.BadRequestError) as caught:
        await whisper_client.audio.translations.create(
            model=MODEL, file=SHORT, extra_body={"language": "en", "to_language": "es"}
        )
    _refused(caught, "to_language")


async def _translated(client: openai.AsyncOpenAI, path: Path, **kw) -> str:
    out = await client.audio.translations.create(
        model=MODEL, file=path, response_format="text", temperature=0.0,
        extra_body={"language": "zh"}, **kw,
    )  # fmt: skip
    return str(out).strip()


async def test_translation__test_streaming_response(greedy_server: str, scripted: ScriptedEngine):
    # Upstream streams vLLM's chunks over httpx (the SDK has no translation stream);
    # ours streams OpenAI's events on the same route.
    scripted.windows.clear()
    form = {"model": MODEL, "language": "zh", "temperature": "0"}
    async with httpx.AsyncClient(base_url=greedy_server, timeout=60) as http:
        whole = await http.post(
            "/v1/audio/translations", data=form, files={"file": FOSCOLO.read_bytes()}
        )
        streamed = ""
        async with http.stream(
            "POST",
            "/v1/audio/translations",
            data={**form, "stream": "true"},
            files={"file": FOSCOLO.read_bytes()},
        ) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    event = json.loads(line.removeprefix("data: "))
                    streamed += event.get("delta", "")
    words, expected = streamed.split(), whole.json()["text"].split()
    # Upstream allows a tenth of the words to differ between the two runs.
    same = sum(a == b for a, b in zip(words, expected, strict=False))
    assert expected and same >= 0.9 * len(expected), (streamed, expected)
    # Both translated FOSCOLO, from Mandarin.
    assert heard(streamed) == pytest.approx(seconds_of(FOSCOLO), abs=0.05)
    assert [(j.mode, j.params.language) for j in scripted.windows] == [(Mode.TRANSLATE, "zh")] * 2


async def test_translation__test_stream_options(greedy_server: str):
    form = {
        "model": MODEL,
        "stream": "true",
        "stream_include_usage": "true",
        "stream_continuous_usage_stats": "true",
    }
    async with httpx.AsyncClient(base_url=greedy_server, timeout=60) as http:
        r = await http.post("/v1/audio/translations", data=form, files={"file": b"x"})
    error = r.json()["error"]
    assert r.status_code == 400 and error["param"] == "stream_include_usage"


async def test_translation__test_audio_with_max_tokens(whisper_client: openai.AsyncOpenAI):
    with pytest.raises(openai.BadRequestError) as caught:
        await whisper_client.audio.translations.create(
            model=MODEL, file=SHORT, response_format="text",
            extra_body={"max_completion_tokens": 1},
        )  # fmt: skip
    _refused(caught, "max_completion_tokens")
    with pytest.raises(openai.BadRequestError) as caught:
        await whisper_client.audio.transcriptions.create(
            model=MODEL, file=SHORT, response_format="text",
            extra_body={"max_completion_tokens": int(1e6), "repetition_penalty": 1.3},
        )  # fmt: skip
    _refused(caught, "max_completion_tokens")


# --- test_transcription_validation.py ----------------------------------------------


async def test_validation__test_basic_audio(
    whisper_client: openai.AsyncOpenAI, scripted: ScriptedEngine
):
    # Upstream starts a server per ASR model (Voxtral, Qwen3-ASR); ours serves every
    # name /v1/models lists: each transcribes, with the audio's seconds as usage.
    names = [m.id async for m in whisper_client.models.list()]
    assert MODEL in names
    for name in names:
        raw = await whisper_client.audio.transcriptions.with_raw_response.create(
            model=name, file=MARY, language="en", response_format="json", temperature=0.0
        )
        body = json.loads(raw.text)
        assert heard(body["text"]) == pytest.approx(11.0, abs=0.05), (name, body)
        assert body["usage"]["seconds"] == 11
    assert len(scripted.windows) == len(names)


async def test_validation__test_basic_audio_with_lora(whisper_client: openai.AsyncOpenAI):
    # No LoRA adapters here: upstream's alias is an unknown model.
    with pytest.raises(openai.NotFoundError) as caught:
        await whisper_client.audio.transcriptions.create(model="speech", file=SHORT)
    assert caught.value.body["code"] == "model_not_found"


# --- test_transcription_inter_chunk_spacing.py -------------------------------------
# Upstream unit-tests vLLM's separator helper with mocks; ours joins text by its
# characters (stepaudio.text.join_texts), not by a language code, and the served tests
# run real recordings across windows.


def test_spacing__test_default_no_space_languages_includes_zh_and_ja():
    assert join_texts(["你好", "世界"]) == "你好世界"  # Chinese
    assert join_texts(["こんにちは", "世界"]) == "こんにちは世界"  # Japanese


@pytest.mark.parametrize(
    ("pieces", "joined"),
    [
        (["hello", "world"], "hello world"),
        (["Hello", "World"], "Hello World"),
        (["你好", "世界"], "你好世界"),
        (["你好。", "世界"], "你好。世界"),
        (["ありがとう", "ございます"], "ありがとうございます"),
        (["", "world"], "world"),
    ],
)
def test_spacing__test_asr_inter_chunk_separator_matches_protocol(pieces: list[str], joined: str):
    assert join_texts(pieces) == joined


def test_spacing__test_joined_chunks_english_has_space_between():
    assert join_texts(["hello", "world"]) == "hello world"


def test_spacing__test_joined_chunks_chinese_has_no_space_between():
    assert join_texts(["你好", "世界"]) == "你好世界"


def _stream(url: str, path: Path, language: str) -> tuple[list[str], str]:
    with httpx.Client(base_url=url, timeout=300) as http, open(path, "rb") as f:
        r = http.post(
            "/v1/audio/transcriptions",
            data={"model": MODEL, "language": language, "stream": "true"},
            files={"file": f},
        )
    events = [json.loads(x[6:]) for x in r.text.splitlines() if x.startswith("data: {")]
    deltas = [e["delta"] for e in events if e["type"] == "transcript.text.delta"]
    assert events[-1]["type"] == "transcript.text.done"
    return deltas, events[-1]["text"]


ENGLISH_CHUNKS = ["en/sense_and_sensibility_0890.wav", "en/sense_and_sensibility_0920.wav"]
ENGLISH_SEAM = "disposed had he"  # the end of the first clip, the start of the second
MANDARIN_CHUNKS = [
    "zh/aishell-BAC009S0724W0121.wav",  # ...分析
    "zh/firered_BAC009S0764W0121.wav",  # 甚至...情况
    "zh/firered_IT0011W0001.wav",  # 换一首歌
]
# Both seams joined directly (a full stop between is fine, a space is not; Whisper may
# put spaces inside a window's own text: that is its text, not a seam of ours).
MANDARIN_SEAMS = [re.compile(r"析[。，,.]?甚至"), re.compile(r"况[。，,.]?换一")]
ENGLISH_WINDOW = re.compile(r"heard (\d+\.\d\d) s, rms \d+")
MANDARIN_WINDOW = re.compile(r"听到(\d+\.\d\d)秒。")
"""A scripted window's text (``whisperlike``), in English and in Chinese."""


def _mandarin_seams_closed(text: str) -> bool:
    simplified = zhconv.convert(text, "zh-cn")
    return all(seam.search(simplified) for seam in MANDARIN_SEAMS)


def _recording(tmp_path: Path, clips: list[str]) -> Path:
    """The clips once each, a second of silence after each: more than one 10-s window."""
    gap = np.zeros(SAMPLE_RATE, dtype=np.int16)
    pcm = np.concatenate([part for c in clips for part in (load_pcm(clip(c)), gap)])
    return write_audio(pcm, tmp_path / f"{Path(clips[0]).stem}-chunks.wav")


def _windows_joined(text: str, window: re.Pattern, separator: str, path: Path) -> None:
    """``text`` is the scripted windows' texts, joined by ``separator``, covering the
    whole recording."""
    found = list(window.finditer(text))
    assert len(found) >= 2, text
    assert separator.join(m[0] for m in found) == text
    assert sum(float(m[1]) for m in found) == pytest.approx(seconds_of(path), abs=0.1)


def test_spacing__test_transcription_stream_generator_english_inserts_space_between_chunks(
    chunked_server: str, tmp_path: Path
):
    path = _recording(tmp_path, ENGLISH_CHUNKS)
    deltas, done = _stream(chunked_server, path, "en")
    assert len(deltas) >= 2 and "".join(deltas) == done  # one delta per window
    # A later window's first delta starts with the space that separates it.
    assert all(d.startswith(" ") for d in deltas[1:]) and "  " not in done
    # Whisper's segments begin with a space: the first window's is not the text's.
    assert not done.startswith(" ")
    _windows_joined(done, ENGLISH_WINDOW, " ", path)


def test_spacing__test_transcription_stream_generator_chinese_no_space_between_chunks(
    chunked_server: str, tmp_path: Path
):
    path = _recording(tmp_path, MANDARIN_CHUNKS)
    deltas, done = _stream(chunked_server, path, "zh")
    assert len(deltas) >= 2 and "".join(deltas) == done
    assert not any(d.startswith(" ") for d in deltas[1:])
    _windows_joined(done, MANDARIN_WINDOW, "", path)


def test_spacing__test_create_transcription_non_streaming_joins_chunks_by_language(
    chunked_server: str, tmp_path: Path
):
    texts, paths = {}, {}
    with httpx.Client(base_url=chunked_server, timeout=300) as http:
        for clips, language in ((ENGLISH_CHUNKS, "en"), (MANDARIN_CHUNKS, "zh")):
            paths[language] = _recording(tmp_path, clips)
            with open(paths[language], "rb") as f:
                r = http.post(
                    "/v1/audio/transcriptions",
                    data={"model": MODEL, "language": language},
                    files={"file": f},
                )
            texts[language] = r.json()["text"]
    assert "  " not in texts["en"]
    _windows_joined(texts["en"], ENGLISH_WINDOW, " ", paths["en"])
    _windows_joined(texts["zh"], MANDARIN_WINDOW, "", paths["zh"])


# --- the model's words, on the embedded engine --------------------------------------
# The upstream tests whose subject is what Whisper and the text model say.


def _greedy(embedded: EmbeddedEngine, window_s: float) -> EmbeddedEngine:
    """The session's engine (its models already loaded) decoding greedily, with windows
    of ``window_s``."""
    embedded.whisper.model()  # loaded once, shared by the copy
    engine = copy.copy(embedded)
    engine.whisper = copy.copy(embedded.whisper)
    engine.whisper.beam_size = 1
    engine.asr_window_s = window_s
    return engine


@pytest.fixture(scope="module")
def model_server(
    tmp_path_factory: pytest.TempPathFactory, embedded: EmbeddedEngine
) -> Iterator[str]:
    """Our service as ``server`` (tests/conftest.py) runs it, greedy."""
    yield from _serve(tmp_path_factory.mktemp("vllm-model"), _greedy(embedded, 300), 300)


@pytest.fixture(scope="module")
def model_chunked_server(
    tmp_path_factory: pytest.TempPathFactory, embedded: EmbeddedEngine
) -> Iterator[str]:
    """Windows of 10 s, on the embedded engine."""
    yield from _serve(tmp_path_factory.mktemp("vllm-model-chunks"), _greedy(embedded, 10), 10)


@pytest.fixture
async def model_client(model_server: str):
    async with openai.AsyncOpenAI(
        base_url=f"{model_server}/v1", api_key="unused", max_retries=0, timeout=300
    ) as client:
        yield client


@pytest.mark.heavy
async def test_whisper__test_long_audio_request(model_client: openai.AsyncOpenAI, tmp_path: Path):
    # Upstream: its clip ten times over, each said once in the text. Ours: a 3-s clip ten
    # times (with pauses), past Whisper's 30-s piece: the repeats are where it loops.
    pcm, placed = build([SHORT], min_seconds=40)
    path = write_audio(pcm, tmp_path / "repeated.wav")
    body = await _json(model_client, path, language="en", temperature=0.0)
    said = re.findall(r"young man", body["text"].lower())
    assert len(said) == len(placed), body["text"]
    assert body["usage"]["seconds"] == int(np.ceil(pcm.size / SAMPLE_RATE))


async def test_whisper__test_basic_audio_words(model_client: openai.AsyncOpenAI):
    # test_whisper__test_basic_audio and _batched, for the words Whisper hears.
    first, second = await asyncio.gather(
        model_client.audio.transcriptions.create(
            model=MODEL, file=MARY, language="en", response_format="text", temperature=0.0
        ),
        model_client.audio.transcriptions.create(
            model=MODEL, file=WINNING_CALL, language="en", response_format="text", temperature=0
        ),
    )
    assert MARY_SAYS in str(first).lower() and WINNING_SAYS in str(second).lower()


async def test_whisper__test_audio_prompt(model_client: openai.AsyncOpenAI):
    prompt = "This is a speech, recorded in a phonograph."
    plain = await model_client.audio.transcriptions.create(
        model=MODEL, file=MARY, language="en", response_format="text", temperature=0.0
    )
    prompted = await model_client.audio.transcriptions.create(
        model=MODEL, file=MARY, language="en", response_format="text", temperature=0.0,
        prompt=prompt,
    )  # fmt: skip
    # A prompt must not make the transcript lose its beginning.
    for text in (str(plain), str(prompted)):
        assert text.lower().startswith("and so my fellow americans"), text
        assert "phonograph" not in text.lower()


@pytest.mark.parametrize(
    ("path", "language", "expected"),
    [(MARY, "en", MARY_SAYS), (FOSCOLO, "zh", FOSCOLO_SAYS)],
    ids=["english", "mandarin"],
)
async def test_whisper__test_language_auto_detect(
    model_client: openai.AsyncOpenAI, path: Path, language: str, expected: str
):
    verbose = await model_client.audio.transcriptions.create(
        model=MODEL, file=path, response_format="verbose_json", temperature=0.0
    )
    assert verbose.language == language
    found = verbose.text.lower() if language == "en" else normalize_zh(verbose.text)
    assert expected in found, verbose.text


async def test_translation__test_basic_audio(model_client: openai.AsyncOpenAI):
    # Upstream: Italian -> "greek sea". Ours: Mandarin about trade stalling -> English.
    out = await _translated(model_client, FOSCOLO)
    assert is_english(out) and re.search(r"\b(trade|trading|transaction|deal)s?\b", out.lower())


async def test_translation__test_audio_prompt(model_client: openai.AsyncOpenAI):
    prompt = "Nor have I ever"
    out = await _translated(model_client, FOSCOLO, prompt=prompt)
    assert is_english(out) and prompt.lower() not in out.lower()


@pytest.mark.heavy
async def test_translation__test_long_audio_request(
    model_client: openai.AsyncOpenAI, tmp_path: Path
):
    # Upstream: its clip twice, the key phrase translated twice.
    pcm, _ = build([FOSCOLO], min_seconds=2 * load_pcm(FOSCOLO).size / SAMPLE_RATE)
    out = await _translated(model_client, write_audio(pcm, tmp_path / "twice.wav"))
    once = await _translated(model_client, FOSCOLO)
    assert is_english(out), out

    # Both halves translated: about twice the text of one, or twice its sentences (a small
    # text model may word the pair more briefly than the one; which English words it picks
    # varies, and test_translation__test_basic_audio checks the sense).
    def sentences(text: str) -> int:
        return len([s for s in re.split(r"[.!?]+", text) if s.strip()])

    assert len(out) >= 1.5 * len(once) or sentences(out) >= 2 * sentences(once), (out, once)


async def test_validation__test_basic_audio_foscolo(model_client: openai.AsyncOpenAI):
    text = await model_client.audio.transcriptions.create(
        model=MODEL, file=FOSCOLO, language="zh", response_format="text", temperature=0.0
    )
    assert FOSCOLO_SAYS in normalize_zh(str(text))


def test_spacing__test_seams_of_real_words(model_chunked_server: str, tmp_path: Path):
    # The spacing tests above, on Whisper's words: the words either side of each seam.
    deltas, done = _stream(model_chunked_server, _recording(tmp_path, ENGLISH_CHUNKS), "en")
    assert len(deltas) >= 2 and "  " not in done
    assert ENGLISH_SEAM in normalize_en(done), done
    deltas, done = _stream(model_chunked_server, _recording(tmp_path, MANDARIN_CHUNKS), "zh")
    assert len(deltas) >= 2
    assert _mandarin_seams_closed(done), done
