"""Wyoming (Home Assistant's voice protocol) over TCP: ``describe`` → ``info``;
``transcribe``, ``audio-start``, ``audio-chunk``…, ``audio-stop`` → ``transcript``, with
the streaming events it advertises around it: ``transcript-start``, a
``transcript-chunk`` per partial while audio still arrives (the same append-only partials
as ``/v1/realtime``), the ``transcript``, ``transcript-stop``.

Home Assistant runs its own VAD and sends one command per ``audio-start``/``audio-stop``:
the whole utterance is one turn. Wyoming has no keys: bind it to a trusted network
(``live.wyoming_host``). Each connection holds a place among the live sessions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import AsrModel, AsrProgram, Attribution, Describe, Info
from wyoming.server import AsyncEventHandler, AsyncTcpServer

from stepaudio import __version__
from stepaudio.api.services import Services, model_label
from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.errors import QueueFull, StepAudioError
from stepaudio.live import Completed, Delta, Failed, LiveEvent, LiveSession
from stepaudio.live.session import MIN_COMMIT_MS, Heard
from stepaudio.live.state import LiveState
from stepaudio.params import Mode, ProcessParams
from stepaudio.service import Lifecycle, Ticket

OWNER = "wyoming"
LANGUAGES = ["en", "zh", "de", "es", "fr", "it", "ja", "ko", "nl", "pt", "ru"]
"""Offered to Home Assistant (Whisper knows many more; these are the ones tested)."""


def info(model_name: str) -> Info:
    attribution = Attribution(name="stepaudio", url="https://pypi.org/project/stepaudio/")
    model = AsrModel(
        name=model_name,
        attribution=attribution,
        installed=True,
        description=f"stepaudio on {model_name}",
        version=__version__,
        languages=LANGUAGES,
    )
    program = AsrProgram(
        name="stepaudio",
        attribution=attribution,
        installed=True,
        description="Transcription by stepaudio, partials while audio arrives",
        version=__version__,
        models=[model],
        supports_transcript_streaming=True,
    )
    return Info(asr=[program])


class WyomingHandler(AsyncEventHandler):
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        lifecycle: Lifecycle,
        live: LiveState,
        model_name: str,
        partial_interval_s: float,
    ):
        super().__init__(reader, writer)
        self.lifecycle = lifecycle
        self.live = live
        self.model_name = model_name
        self.partial_interval_s = partial_interval_s
        self.language: str | None = None
        self.converter = AudioChunkConverter(rate=SAMPLE_RATE, width=2, channels=1)
        self.session: LiveSession | None = None
        self.final: str | None = None
        self.failure: StepAudioError | None = None
        self.ticket: Ticket | None = None

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(info(self.model_name).event())
        elif Transcribe.is_type(event.type):
            self.language = Transcribe.from_event(event).language or None
        elif AudioStart.is_type(event.type):
            return await self._start()
        elif AudioChunk.is_type(event.type) and self.session is not None:
            chunk = self.converter.convert(AudioChunk.from_event(event))
            await self.session.append(np.frombuffer(chunk.audio, "<i2"))
        elif AudioStop.is_type(event.type) and self.session is not None:
            await self._stop()
        return True

    async def _start(self) -> bool:
        await self._close_session()  # an audio-start without a stop before it
        try:
            self.ticket = self.live.sessions.admit(OWNER)
        except QueueFull as exc:
            await self.write_event(Error(text=exc.message, code="session_limit_reached").event())
            return False
        self.final, self.failure = None, None
        self.session = LiveSession(
            self._transcribe, self._on_live, vad=None, partial_interval_s=self.partial_interval_s
        )
        await self.write_event(TranscriptStart(language=self.language).event())
        return True

    async def _stop(self) -> None:
        session = self.session
        assert session is not None
        if session.received_seconds * 1000 >= MIN_COMMIT_MS:
            await session.commit()
            await session.drain()
        text = self.final or ""
        if self.failure is not None:
            await self.write_event(Error(text=self.failure.message, code=self.failure.code).event())
        await self.write_event(Transcript(text=text, language=self.language).event())
        await self.write_event(TranscriptStop().event())
        await self._close_session()

    async def _close_session(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
        if self.ticket is not None:
            self.ticket.release()
            self.ticket = None

    async def disconnect(self) -> None:
        await self._close_session()

    async def _on_live(self, event: LiveEvent) -> None:
        if isinstance(event, Delta):
            await self.write_event(TranscriptChunk(text=event.delta).event())
        elif isinstance(event, Completed):
            self.final = event.transcript
        elif isinstance(event, Failed):
            self.failure = event.error

    async def _transcribe(self, samples: np.ndarray, final: bool) -> Heard | None:
        params = ProcessParams(mode=Mode.ASR, language=self.language)
        return await self.live.transcribe(
            self.lifecycle, samples, params, final=final, face="wyoming", owner=OWNER
        )


def handler_factory(
    lifecycle: Lifecycle, live: LiveState, model_name: str, partial_interval_s: float
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], AsyncEventHandler]:
    def make(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> AsyncEventHandler:
        return WyomingHandler(
            reader,
            writer,
            lifecycle=lifecycle,
            live=live,
            model_name=model_name,
            partial_interval_s=partial_interval_s,
        )

    return make


async def start(services: Services) -> AsyncTcpServer | None:
    """The Wyoming server beside the HTTP one, if ``live.wyoming_port`` is set."""
    live = services.settings.live
    if live.wyoming_port is None:
        return None
    if services.live is None:
        services.live = LiveState.from_settings(live)
    server = AsyncTcpServer(live.wyoming_host, live.wyoming_port)
    factory = handler_factory(
        services.lifecycle, services.live, model_label(services), live.partial_interval_s
    )
    await server.start(factory)
    return server
