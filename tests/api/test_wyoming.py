"""Wyoming beside the HTTP service, driven by the ``wyoming`` client library as Home
Assistant drives it: describe, then transcribe + audio-start/chunk/stop, streaming
events around the transcript. Scripted engine here (what reached it, what came back);
the real model in tests/live/test_realtime_model.py."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator

import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info

from stepaudio.api import create_app
from stepaudio.config import Settings
from stepaudio.testing.longaudio import load_pcm
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip

JFK = load_pcm(clip("en/jfk.flac"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def wyoming_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, ScriptedEngine]]:
    port = free_port()
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("wyoming"),
        live_wyoming_port=port,
        live_max_sessions=1,
        _env_file=None,
    )
    engine = ScriptedEngine()
    with serve_in_thread(create_app(settings, engine=engine), settings=settings):
        yield port, engine


async def utterance(
    port: int, pcm: np.ndarray, rate: int = 16000, language: str | None = "en"
) -> list[Event]:
    """One voice command as Home Assistant sends it; every event back until the stop."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language=language).event())
        await client.write_event(AudioStart(rate=rate, width=2, channels=1).event())
        data = pcm.astype("<i2").tobytes()
        step = rate // 10 * 2
        for i in range(0, len(data), step):
            await client.write_event(
                AudioChunk(rate=rate, width=2, channels=1, audio=data[i : i + step]).event()
            )
        await client.write_event(AudioStop().event())
        events = []
        while True:
            event = await asyncio.wait_for(client.read_event(), timeout=30)
            assert event is not None
            events.append(event)
            if TranscriptStop.is_type(event.type) or Error.is_type(event.type):
                return events


def test_describe_offers_streaming_asr(wyoming_port):
    port, _ = wyoming_port

    async def describe() -> Info:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Describe().event())
            event = await asyncio.wait_for(client.read_event(), timeout=10)
            assert event is not None and Info.is_type(event.type)
            return Info.from_event(event)

    found = asyncio.run(describe())
    (program,) = found.asr
    assert program.supports_transcript_streaming and program.models[0].installed
    assert "en" in program.models[0].languages and "zh" in program.models[0].languages


def test_an_utterance_is_transcribed_with_its_streaming_events(wyoming_port):
    port, engine = wyoming_port
    engine.windows.clear()
    events = asyncio.run(utterance(port, JFK))
    kinds = [e.type for e in events]
    assert kinds[0] == "transcript-start" and kinds[-2:] == ["transcript", "transcript-stop"]
    assert TranscriptStart.from_event(events[0]).language == "en"
    text = Transcript.from_event(events[-2]).text
    assert re.fullmatch(r"heard 11\.0\d s, rms \d+", text), text
    chunks = [TranscriptChunk.from_event(e).text for e in events if e.type == "transcript-chunk"]
    assert "".join(chunks) == text
    assert engine.windows[-1].params.language == "en"


def test_another_rate_is_converted(wyoming_port):
    port, _ = wyoming_port
    at_8k = JFK[::2][: 8000 * 3]
    events = asyncio.run(utterance(port, at_8k, rate=8000))
    assert re.fullmatch(r"heard 3\.0\d s, rms \d+", Transcript.from_event(events[-2]).text)


def test_an_empty_utterance_is_an_empty_transcript(wyoming_port):
    port, _ = wyoming_port
    events = asyncio.run(utterance(port, np.zeros(0, np.int16)))
    assert Transcript.from_event(events[-2]).text == ""


def test_past_the_session_limit_a_clear_error(wyoming_port):
    port, _ = wyoming_port

    async def two_at_once() -> Event:
        async with AsyncTcpClient("127.0.0.1", port) as first:
            await first.write_event(AudioStart(rate=16000, width=2, channels=1).event())
            await asyncio.wait_for(first.read_event(), timeout=10)  # transcript-start
            async with AsyncTcpClient("127.0.0.1", port) as second:
                await second.write_event(AudioStart(rate=16000, width=2, channels=1).event())
                refused = await asyncio.wait_for(second.read_event(), timeout=10)
                assert refused is not None
                return refused

    last = asyncio.run(two_at_once())
    assert Error.is_type(last.type) and Error.from_event(last).code == "session_limit_reached"
    # The first one gone, its place is free again.
    events = asyncio.run(utterance(port, JFK[:16000]))
    assert events[-1].type == "transcript-stop"
