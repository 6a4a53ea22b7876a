"""LiveKit's OpenAI STT plugin (``livekit-plugins-openai``), unmodified, with its base URL
pointed at us: it opens ``/v1/realtime?intent=transcription&model=…``, sends its own
``session.update`` and 24 kHz frames, and turns our events into its speech events. On
the scripted engine: the subject is the protocol, the real model is tested through the
``openai`` SDK (tests/live)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import aiohttp
import numpy as np
import pytest
from livekit import rtc
from livekit.agents import stt as lk_stt
from livekit.plugins import openai as lk_openai

from stepaudio.testing.encode import realtime_pcm
from stepaudio.testing.longaudio import load_pcm
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_scripted
from tests.helpers import clip

KEY = "lk-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ScriptedEngine]]:
    with serve_scripted(tmp_path_factory.mktemp("livekit"), api_keys=[KEY]) as served:
        yield served


async def transcribe(
    url: str,
    pcm24: np.ndarray,
    language: str = "en",
    key: str = KEY,
    pace: float = 4.0,
    **options: object,
) -> list[lk_stt.SpeechEvent]:
    """The plugin's speech events for ``pcm24`` pushed in 100 ms frames at ``pace`` times
    real time."""
    async with aiohttp.ClientSession() as http:
        stt = lk_openai.STT(base_url=f"{url}/v1", api_key=key, use_realtime=True, language=language)
        stt._session = http  # outside an agent job: the plugin's HTTP session, given
        stream = stt.stream()

        async def push() -> None:
            for i in range(0, len(pcm24), 2400):
                frame = pcm24[i : i + 2400]
                stream.push_frame(rtc.AudioFrame(frame.tobytes(), 24000, 1, len(frame)))
                await asyncio.sleep(0.1 / pace)
            stream.end_input()

        pusher = asyncio.create_task(push())
        events: list[lk_stt.SpeechEvent] = []

        async def collect() -> None:
            async for event in stream:
                events.append(event)

        collector = asyncio.create_task(collect())
        try:
            await pusher
            # The plugin keeps its socket for the next utterance: stop once it is quiet.
            seen = -1
            while seen != len(events) and not collector.done():
                seen = len(events)
                await asyncio.sleep(3)
        finally:
            collector.cancel()
            await asyncio.gather(collector, return_exceptions=True)
            await stream.aclose()
            await stt.aclose()
        return events


def test_livekit_openai_stt_transcribes_turn_by_turn(server):
    url, engine = server
    pcm = load_pcm(clip("en/jfk.flac"))
    silence = np.zeros(24000, np.int16)
    events = asyncio.run(
        transcribe(
            url,
            np.concatenate([silence, np.frombuffer(realtime_pcm(pcm), "<i2"), silence, silence]),
        )
    )
    kinds = [e.type for e in events]
    finals = [
        e.alternatives[0].text for e in events if e.type == lk_stt.SpeechEventType.FINAL_TRANSCRIPT
    ]
    assert kinds.count(lk_stt.SpeechEventType.START_OF_SPEECH) == len(finals) >= 2
    assert all(re.fullmatch(r"heard \d+\.\d\d s, rms \d+", text) for text in finals), finals
    # The turns together are the speech: JFK's 11 s, give or take the pauses cut out.
    heard = sum(float(re.match(r"heard (\S+)", t).group(1)) for t in finals)
    assert 8 < heard < 13, finals
    assert engine.windows[-1].params.language == "en"
