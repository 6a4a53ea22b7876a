"""CascadeEngine: an OpenAI transcription server (built here from the embedded Whisper)
plus an OpenAI chat server (the stand-in, lenient) for the text tasks."""

from __future__ import annotations

import io
import wave

import httpx
import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stepaudio.audio import DecodedAudio
from stepaudio.config import Settings
from stepaudio.engines.base import TextJob, WindowJob
from stepaudio.engines.cascade import CascadeEngine
from stepaudio.engines.embedded import EmbeddedEngine
from stepaudio.errors import BackendUnavailable
from stepaudio.params import Mode, ProcessParams
from stepaudio.testing import StandIn
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def transcription_app(embedded: EmbeddedEngine) -> Starlette:
    async def transcribe(request: Request) -> JSONResponse:
        form = await request.form()
        raw = await form["file"].read()
        with wave.open(io.BytesIO(raw)) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        out = embedded.whisper.transcribe(pcm, language=form.get("language"))
        segments = [{"start": s.start, "end": s.end, "text": s.text} for s in out.segments]
        return JSONResponse({"text": out.text, "language": out.language, "segments": segments})

    async def models(request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "whisper-1"}]})

    return Starlette(
        routes=[
            Route("/v1/audio/transcriptions", transcribe, methods=["POST"]),
            Route("/v1/models", models),
        ]
    )


async def test_cascade_transcribes_and_answers(
    settings: Settings, embedded: EmbeddedEngine
) -> None:
    with DecodedAudio.from_file(clip("en/jfk.flac"), settings.data_dir / "tmp") as d:
        pcm = np.array(d.samples)
    with (
        serve_in_thread(transcription_app(embedded)) as asr_url,
        StandIn(data_dir=settings.data_dir, strict=False) as chat,
    ):
        s = Settings(
            data_dir=settings.data_dir,
            transcription_url=f"{asr_url}/v1",
            chat_url=chat.url,
            chat_model=chat.model,
            _env_file=None,
        )
        engine = CascadeEngine(s)
        try:
            out = await engine.run_window(
                WindowJob(Mode.ASR, pcm, 0.0, ProcessParams(mode=Mode.ASR))
            )
            local = await embedded.run_window(
                WindowJob(Mode.ASR, pcm, 0.0, ProcessParams(mode=Mode.ASR))
            )
            assert out.text == local.text and out.segments and out.language == "en"
            prompt = "Here is a transcript:\n\nOne thing. Two things. Three.\n\nSummarize."
            answer = await engine.complete(TextJob("sys", prompt, ProcessParams()))
            assert answer.text == "One thing. Two things." and not answer.truncated
            assert (await engine.health())["ready"]
            chat.stop()
            with pytest.raises(BackendUnavailable):
                await engine.complete(TextJob("sys", prompt, ProcessParams()))
        finally:
            await engine.aclose()


async def test_cascade_sends_the_asked_temperature(settings: Settings) -> None:
    """The request's temperature goes to the transcription server; unset, none is sent
    (the server's own default applies)."""
    sent: list[dict[str, str]] = []

    async def transcribe(request: Request) -> JSONResponse:
        form = await request.form()
        sent.append({k: v for k, v in form.items() if isinstance(v, str)})
        return JSONResponse({"text": "hello", "language": "en", "segments": []})

    app = Starlette(routes=[Route("/v1/audio/transcriptions", transcribe, methods=["POST"])])
    s = Settings(data_dir=settings.data_dir, transcription_url="http://asr.test/v1", _env_file=None)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    engine = CascadeEngine(s, client=client)
    pcm = np.zeros(16000, dtype=np.int16)
    try:
        for temperature in (0.7, None):
            params = ProcessParams(mode=Mode.ASR, temperature=temperature)
            await engine.run_window(WindowJob(Mode.ASR, pcm, 0.0, params))
    finally:
        await client.aclose()
    assert sent[0]["temperature"] == "0.7" and "temperature" not in sent[1]
