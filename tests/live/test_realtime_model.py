"""Live transcription on the real embedded model, through the ``openai`` SDK's realtime
client, unmodified, streaming real recordings at real-time pace to a real server on
loopback: every turn's deltas join into its completed text, and the turns joined are as
good as the file transcript of the same audio (2 WER points in English, 3 CER points in
Mandarin)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from openai import AsyncOpenAI

from stepaudio.api import create_app
from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.config import Settings
from stepaudio.engines.embedded import EmbeddedEngine
from stepaudio.testing.encode import realtime_pcm, write_audio
from stepaudio.testing.longaudio import load_pcm
from stepaudio.testing.server import serve_in_thread
from tests.helpers import cer, clip, reference, wer

CASES = {
    # 74 words: one word is 1.4 points, so the 2-point bound is not all-or-nothing.
    "en": ["en/jfk.flac", "en/librispeech-1995-1837-0001.wav", "en/sense_and_sensibility_0870.wav"],
    "zh": ["zh/thchs30_A11_0.wav", "zh/aishell-BAC009S0724W0121.wav"],
}


@pytest.fixture(scope="module")
def server(settings: Settings, embedded: EmbeddedEngine) -> Iterator[str]:
    with serve_in_thread(create_app(settings, engine=embedded), settings=settings) as url:
        yield url


def recording(names: list[str]) -> np.ndarray:
    """The clips one after another, a second of silence around each."""
    pause = np.zeros(SAMPLE_RATE, np.int16)
    return np.concatenate([pause, *[np.concatenate([load_pcm(clip(n)), pause]) for n in names]])


async def stream(url: str, pcm: np.ndarray, language: str) -> list[tuple[str, list[str]]]:
    """Each completed turn's transcript and the deltas sent for it, in order."""
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    data = realtime_pcm(np.concatenate([pcm, np.zeros(SAMPLE_RATE * 2, np.int16)]))
    step = 4800  # 100 ms
    turns: dict[str, list[str]] = {}
    done: list[tuple[str, list[str]]] = []
    async with client.realtime.connect(
        model="gpt-4o-transcribe", extra_query={"intent": "transcription"}
    ) as conn:
        await conn.session.update(
            session={
                "type": "transcription",
                "audio": {"input": {"transcription": {"language": language}}},
            }
        )

        async def send() -> None:
            started = time.monotonic()
            for i in range(0, len(data), step):
                audio = base64.b64encode(data[i : i + step]).decode()
                await conn.input_audio_buffer.append(audio=audio)
                # Real-time pace: the next chunk when its time has come.
                await asyncio.sleep(max(0, started + (i + step) / 48000 - time.monotonic()))

        sender = asyncio.create_task(send())
        spoken: set[str] = set()  # turns started and not yet completed
        while not (sender.done() and not spoken):
            try:
                event = await asyncio.wait_for(conn.recv(), timeout=1.0)
            except TimeoutError:
                continue
            assert event.type != "error", event
            if event.type == "input_audio_buffer.speech_started":
                spoken.add(event.item_id)
            elif event.type == "conversation.item.input_audio_transcription.delta":
                turns.setdefault(event.item_id, []).append(event.delta)
            elif event.type == "conversation.item.input_audio_transcription.completed":
                spoken.discard(event.item_id)
                done.append((event.transcript, turns.pop(event.item_id, [])))
        await sender
    return done


def file_transcript(url: str, pcm: np.ndarray, language: str, tmp_path) -> str:
    path = write_audio(pcm, tmp_path / "whole.wav")
    with open(path, "rb") as f:
        r = httpx.post(
            f"{url}/v1/audio/transcriptions",
            files={"file": ("whole.wav", f)},
            data={"model": "whisper-1", "language": language},
            timeout=300,
        )
    assert r.status_code == 200, r.text
    return r.json()["text"]


@pytest.mark.parametrize("language", ["en", "zh"])
def test_live_turns_are_as_good_as_the_file_transcript(server, language, tmp_path):
    names = CASES[language]
    pcm = recording(names)
    turns = asyncio.run(stream(server, pcm, language))
    assert turns, "no turn was completed"
    for transcript, deltas in turns:
        assert "".join(deltas) == transcript
    refs = [" ".join(reference({"ref": n.rsplit(".", 1)[0] + ".txt"}) for n in names)]
    live = ("" if language == "zh" else " ").join(t for t, _ in turns)
    whole = file_transcript(server, pcm, language, tmp_path)
    score = cer if language == "zh" else wer
    allowed = 0.03 if language == "zh" else 0.02
    assert score(refs, [live]) <= score(refs, [whole]) + allowed, (live, whole)


@pytest.fixture(scope="module")
def wyoming_port(settings: Settings, embedded: EmbeddedEngine) -> Iterator[int]:
    from tests.api.test_wyoming import free_port

    port = free_port()
    config = settings.updated(live_wyoming_port=port)
    with serve_in_thread(create_app(config, engine=embedded), settings=config):
        yield port


@pytest.mark.parametrize("language", ["en", "zh"])
def test_wyoming_transcribes_a_voice_command(wyoming_port, server, language, tmp_path):
    """Home Assistant's side, through the ``wyoming`` library: one utterance per clip."""
    from wyoming.asr import Transcript, TranscriptChunk

    from tests.api.test_wyoming import utterance

    names = CASES[language]
    pcm = recording(names)
    events = asyncio.run(utterance(wyoming_port, pcm, language=language))
    text = Transcript.from_event(events[-2]).text
    chunks = [TranscriptChunk.from_event(e).text for e in events if e.type == "transcript-chunk"]
    assert "".join(chunks) == text
    refs = [" ".join(reference({"ref": n.rsplit(".", 1)[0] + ".txt"}) for n in names)]
    whole = file_transcript(server, pcm, language, tmp_path)
    score = cer if language == "zh" else wer
    assert score(refs, [text]) <= score(refs, [whole]) + (0.03 if language == "zh" else 0.02)


def test_a_live_translation_session_speaks_the_target_language(server):
    """English speech, Chinese out, through the SDK's translation client."""
    import re

    from openai import OpenAI

    client = OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)
    data = realtime_pcm(recording(["en/jfk.flac"]))
    out: list[str] = []
    with client.realtime.translations.connect(model="gpt-realtime-translate") as conn:
        conn.session.update(session={"audio": {"output": {"language": "Chinese"}}})
        for i in range(0, len(data), 9600):
            conn.session.input_audio_buffer.append(
                audio=base64.b64encode(data[i : i + 9600]).decode()
            )
        conn.session.close()
        for event in conn:
            assert event.type != "error", event
            if event.type == "session.output_transcript.delta":
                out.append(event.delta)
            elif event.type == "session.closed":
                break
    text = "".join(out)
    assert len(re.findall(r"[\u4e00-\u9fff]", text)) >= 10, text
    assert len(re.findall(r"[A-Za-z]{3,}", text)) <= 2, text


@pytest.mark.parametrize("language", ["en", "zh"])
def test_livekit_plugin_on_the_real_model(server, language, tmp_path):
    """LiveKit's OpenAI STT plugin, unmodified, English and Mandarin at real-time pace:
    its final transcripts together are as good as the file transcript."""
    from livekit.agents import stt as lk_stt

    from tests.api.test_realtime_livekit import transcribe as livekit_transcribe

    names = CASES[language]
    pcm = recording(names)
    openai_vad = {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
    }
    events = asyncio.run(
        livekit_transcribe(
            server,
            np.frombuffer(realtime_pcm(pcm), "<i2"),
            language,
            key="unused",
            pace=1.0,
            turn_detection=openai_vad,
        )
    )
    finals = [
        e.alternatives[0].text for e in events if e.type == lk_stt.SpeechEventType.FINAL_TRANSCRIPT
    ]
    assert finals
    refs = [" ".join(reference({"ref": n.rsplit(".", 1)[0] + ".txt"}) for n in names)]
    live = ("" if language == "zh" else " ").join(finals)
    whole = file_transcript(server, pcm, language, tmp_path)
    score = cer if language == "zh" else wer
    assert score(refs, [live]) <= score(refs, [whole]) + (0.03 if language == "zh" else 0.02)
