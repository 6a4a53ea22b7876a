"""``GET /v1/realtime/translations?model=…``: OpenAI's Realtime translation session over a
WebSocket. The client appends PCM16 at 24 kHz (``session.input_audio_buffer.append``);
the server finds the turns (server VAD, OpenAI's defaults), and sends, append-only,
``session.input_transcript.delta`` (the source text, when ``audio.input.transcription``
is set: partials while the person speaks, as in a transcription session) and
``session.output_transcript.delta`` (each turn translated into ``audio.output.language``
once the turn ends). ``session.close`` → ``session.closed``.

No audio goes out: this server translates text, it does not speak
(``session.created`` says so: ``audio.output.voice`` is null). A turn's translation is a
request through the lifecycle like any other (mode ``translate``, face
``realtime_translation``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketDisconnected

from stepaudio.api.errors import live_params
from stepaudio.api.live_socket import (
    EventSender,
    UnknownEvent,
    accept,
    appended_audio,
    keep_pace,
    live_state,
    parse_event,
)
from stepaudio.api.realtime_audio import AudioIn
from stepaudio.api.services import Services
from stepaudio.errors import BadRequest, InvalidParameter, StepAudioError
from stepaudio.live import Completed, Delta, LiveEvent, LiveSession, StreamingVad, VadConfig
from stepaudio.live.session import Heard
from stepaudio.params import Mode, ProcessParams
from stepaudio.service import Pcm

router = APIRouter()


@router.websocket("/v1/realtime/translations")
async def translations(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    ticket = await accept(websocket, services)
    if ticket is None:
        return
    try:
        await TranslationSession(websocket, services).run()
    finally:
        ticket.release()


class TranslationSession:
    def __init__(self, websocket: WebSocket, services: Services):
        self.ws = websocket
        self.services = services
        self.limits = services.settings.live
        self.owner: str = websocket.scope["state"]["caller"]
        self.id = "sess_" + secrets.token_hex(10)
        self.model = websocket.query_params.get("model") or "gpt-realtime-translate"
        self.language = "en"
        self.transcribe_input: dict[str, Any] | None = None
        self.audio = AudioIn("audio/pcm", 24000)
        self.created = int(time.time())
        self.events = EventSender(websocket)
        self._translated = 0
        self._source_item: str | None = None
        self._translations: asyncio.Queue[np.ndarray] = asyncio.Queue()
        self.live = LiveSession(
            self._transcribe,
            self._on_live,
            vad=StreamingVad(VadConfig()),
            partial_interval_s=self.limits.partial_interval_s,
            max_turn_s=self.limits.max_turn_s,
        )

    def session(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "translation",
            "model": self.model,
            "expires_at": self.created + int(self.limits.max_session_s),
            "audio": {
                "input": {"transcription": self.transcribe_input, "noise_reduction": None},
                "output": {"language": self.language, "voice": None},
            },
        }

    async def run(self) -> None:
        started = time.monotonic()
        await self.send({"type": "session.created", "session": self.session()})
        translator = asyncio.create_task(self._translate_turns())
        try:
            while True:
                try:
                    async with asyncio.timeout(self.limits.idle_timeout_s):
                        message = await self.ws.receive_text()
                except TimeoutError:
                    await self.send_error(BadRequest("No event for too long.", code="idle_timeout"))
                    await self.ws.close(1000)
                    return
                if not await self.handle(message):
                    return
                await keep_pace(self.live.received_seconds, started, self.limits.max_lead_s)
        except (WebSocketDisconnect, WebSocketDisconnected):
            pass
        finally:
            await self.live.close()
            translator.cancel()
            await asyncio.gather(translator, return_exceptions=True)

    async def handle(self, message: str) -> bool:
        """One client event; False when the session is over."""
        try:
            event = parse_event(message)
            kind = event["type"]
            if kind == "session.input_audio_buffer.append":
                await self._append(event.get("audio"))
            elif kind == "session.update":
                self._configure(event.get("session"))
                await self.send({"type": "session.updated", "session": self.session()})
            elif kind == "session.close":
                await self.live.drain()
                await self._translations.join()
                await self.send({"type": "session.closed"})
                await self.ws.close(1000)
                return False
            else:
                raise UnknownEvent(f"Unknown event type '{kind[:64]}'.", param="type")
        except StepAudioError as exc:
            await self.send_error(exc)
        return True

    async def _append(self, audio: object) -> None:
        data = appended_audio(audio, self.limits.max_append_mb)
        await self.live.append(self.audio.samples(data))

    def _configure(self, session: object) -> None:
        if not isinstance(session, dict):
            raise InvalidParameter("'session' must be an object.", param="session")
        audio = session.get("audio") or {}
        if not isinstance(audio, dict):
            raise InvalidParameter("'session.audio' must be an object.", param="session.audio")
        output = audio.get("output") or {}
        if "language" in output:
            language = output["language"]
            params = live_params(
                "session.audio.output",
                {"target_lang": "language"},
                mode=Mode.TRANSLATE,
                target_lang=str(language or "en"),
            )
            self.language = params.target_lang
        inputs = audio.get("input") or {}
        if "transcription" in inputs:
            value = inputs["transcription"]
            if value is not None and not isinstance(value, dict):
                raise InvalidParameter(
                    "'transcription' must be an object or null.",
                    param="session.audio.input.transcription",
                )
            self.transcribe_input = value

    async def _transcribe(self, samples: Any, final: bool) -> Heard | None:
        params = ProcessParams(mode=Mode.ASR, prompt=self.live.context or None)
        live, lifecycle = live_state(self.services), self.services.lifecycle
        return await live.transcribe(
            lifecycle, samples, params, final=final, face="realtime_translation", owner=self.owner
        )

    async def _on_live(self, event: LiveEvent) -> None:
        if isinstance(event, Delta) and self.transcribe_input is not None:
            # One running text across turns: a new turn's first words after a space.
            new_turn = self._source_item not in (None, event.item_id)
            self._source_item = event.item_id
            delta = _spaced(event.delta) if new_turn else event.delta
            await self.send({"type": "session.input_transcript.delta", "delta": delta})
        elif isinstance(event, Completed) and event.transcript and event.audio is not None:
            self._translations.put_nowait(event.audio)

    async def _translate_turns(self) -> None:
        """Each turn's text into the output language, in order, one turn at a time."""
        while True:
            samples = await self._translations.get()
            try:
                translated = await self._translate(samples)
                if translated:
                    delta = (
                        " " if self._translated and translated[0].isalnum() else ""
                    ) + translated
                    self._translated += 1
                    await self.send({"type": "session.output_transcript.delta", "delta": delta})
            except StepAudioError as exc:
                await self.send_error(exc)
            finally:
                self._translations.task_done()

    async def _translate(self, samples: np.ndarray) -> str:
        # The turn's audio in translate mode: each engine translates as it does for a
        # file (the embedded one: Whisper, then its text model; Step-Audio: the model).
        params = ProcessParams(mode=Mode.TRANSLATE, target_lang=self.language)
        lifecycle = self.services.lifecycle
        async with lifecycle.open(
            Pcm(samples), params, face="realtime_translation", owner=self.owner, admit=False
        ) as run:
            result = await run.result()
        return result.answer.strip()

    async def send(self, event: dict[str, Any]) -> None:
        await self.events.send(event)

    async def send_error(self, exc: StepAudioError) -> None:
        await self.events.send_error(exc)


def _spaced(text: str) -> str:
    """``text`` after a space where a space is due (not before CJK or punctuation)."""
    return f" {text}" if text[:1].isascii() and text[:1].isalnum() else text
