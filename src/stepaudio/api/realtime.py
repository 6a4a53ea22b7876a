"""``GET /v1/realtime?intent=transcription``: OpenAI's Realtime transcription session over
a WebSocket, both of its session shapes, so the clients users run (the ``openai`` SDK,
LiveKit's and Pipecat's OpenAI STT) work with a changed base URL.

Client events: ``session.update`` (current shape) or ``transcription_session.update``
(older), ``input_audio_buffer.append`` / ``commit`` / ``clear``. Server events:
``session.created``, ``session.updated`` / ``transcription_session.updated``,
``input_audio_buffer.speech_started`` / ``speech_stopped`` / ``committed`` / ``cleared``,
``conversation.item.input_audio_transcription.delta`` (append-only, while the person still
speaks), ``.completed``, ``.failed``, and ``error``. No audio goes out.

The turns, partials and VAD are ``stepaudio.live``'s; each transcription is a request
through the service's lifecycle (faces ``realtime`` and, for partials, which hear the
same audio again, ``realtime_partial``). The key was checked before the upgrade (the
guard); a session holds one place of ``live.max_sessions`` for its life.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketDisconnected

from stepaudio.api.errors import websocket_error
from stepaudio.api.forms import voice_names
from stepaudio.api.live_socket import (
    EventSender,
    UnknownEvent,
    accept,
    appended_audio,
    keep_pace,
    live_state,
    parse_event,
    refuse,
)
from stepaudio.api.openai_audio import OPENAI_MODELS
from stepaudio.api.realtime_config import SessionConfig, object_param
from stepaudio.api.realtime_recording import SessionRecording
from stepaudio.api.services import Services, model_label
from stepaudio.config import LiveSettings
from stepaudio.diarize.identify import match
from stepaudio.errors import (
    BadRequest,
    InvalidParameter,
    StepAudioError,
)
from stepaudio.live import (
    Cleared,
    Committed,
    Completed,
    Delta,
    Failed,
    LiveEvent,
    LiveSession,
    SpeechStarted,
    SpeechStopped,
    StreamingVad,
)
from stepaudio.live.session import Heard
from stepaudio.params import Mode, ProcessParams

router = APIRouter()


MIN_TURN_SPEECH_S = 1.0
"""Least speech in a turn to tell whose voice it is (a shorter print is mostly noise)."""

WORDS = "item.input_audio_transcription.words"
"""Our ``include`` value (OpenAI has none for it): ``completed`` carries ``words``."""


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    ticket = await accept(websocket, services)
    if ticket is None:
        return
    intent = websocket.query_params.get("intent")
    if intent != "transcription":
        refusal = InvalidParameter(
            "This server serves transcription sessions only: connect with "
            "?intent=transcription (or use /v1/realtime/translations).",
            param="intent",
        )
        ticket.release()
        await refuse(websocket, refusal, 1008)
        return
    try:
        session = TranscriptionSession(websocket, services)
        if websocket.query_params.get("save"):
            await session.record(websocket.query_params["save"])
        if websocket.query_params.get("voices"):
            await session.know(websocket.query_params["voices"])
        await session.run()
    except StepAudioError as exc:
        await refuse(websocket, exc, websocket_error(exc)[1] or 1008)
    finally:
        ticket.release()


class TranscriptionSession:
    """One connection's session: its settings, its audio decoder, its live turns."""

    def __init__(self, websocket: WebSocket, services: Services):
        self.ws = websocket
        self.services = services
        self.limits: LiveSettings = services.settings.live
        self.owner = websocket.scope["state"]["caller"]
        names = list(dict.fromkeys([model_label(services), *OPENAI_MODELS]))
        self.config = SessionConfig(names)
        if websocket.query_params.get("model"):
            self.config.model = websocket.query_params["model"]
        self.recording: SessionRecording | None = None
        self.prints: dict[str, np.ndarray] = {}
        """Known voices (``?voices=``): a completed turn names its speaker if one matches."""
        self.events = EventSender(websocket)
        self.live = self._live()

    async def know(self, names: str) -> None:
        """The key's voices named in ``?voices=Alice,Bob`` (or ``*``), from its library."""
        store = self.services.tasks
        wanted = voice_names(names)
        if store is None or not wanted:
            raise InvalidParameter("'voices' names voices of your library.", param="voices")
        self.prints = await store.voice_prints(self.owner, wanted)

    async def record(self, mode: str) -> None:
        """Keep the session's audio, to become a task of ``mode`` when it ends. The key's
        task quota is checked now: a session that could not be kept is refused at once."""
        store = self.services.tasks
        if store is None:
            raise BadRequest("No task store: sessions cannot be saved.", param="save")
        try:
            params = ProcessParams(mode=mode)
        except ValueError:
            modes = ", ".join(m.value for m in Mode)
            raise InvalidParameter(f"'save' must be a mode: {modes}.", param="save") from None
        await store.check_pending_quota(self.owner)
        self.recording = SessionRecording(self.services.pipeline.tmp_dir, params)

    async def _save(self) -> None:
        """The recording becomes a task; said to the client if it is still there."""
        recording, self.recording = self.recording, None
        if recording is None or self.services.tasks is None:
            return
        try:
            task = await recording.save(self.services.tasks, self.owner, f"{self.config.id}.wav")
        except StepAudioError as exc:
            await self.send_error(exc)
            return
        if task is not None:
            await self.send({"type": "stepaudio.session.saved", "task_id": task.task_id})

    def _live(self) -> LiveSession:
        return LiveSession(
            self._transcribe,
            self._on_live,
            vad=StreamingVad(self.config.vad) if self.config.vad else None,
            partial_interval_s=self.limits.partial_interval_s,
            max_turn_s=self.limits.max_turn_s,
        )

    async def run(self) -> None:
        started = time.monotonic()
        await self.send({"type": "session.created", "session": self.config.as_dict()})
        try:
            while True:
                left = self.limits.max_session_s - (time.monotonic() - started)
                try:
                    async with asyncio.timeout(min(self.limits.idle_timeout_s, max(left, 0))):
                        message = await self.ws.receive_text()
                except TimeoutError:
                    await self._timed_out(left <= self.limits.idle_timeout_s)
                    return
                await self.handle(message)
                await keep_pace(self.live.received_seconds, started, self.limits.max_lead_s)
        except (WebSocketDisconnect, WebSocketDisconnected):
            pass  # the client is gone: its turns are dropped, its place freed
        finally:
            await self.live.close()
            await self._save()

    async def _timed_out(self, session_over: bool) -> None:
        if session_over:
            await self.live.drain()
            message, code = "The session reached its maximum length.", "session_expired"
        else:
            message, code = "No event for too long; the session is closed.", "idle_timeout"
        await self.send_error(BadRequest(message, code=code))
        await self._save()
        await self.ws.close(1000)

    # -- client events ------------------------------------------------------------------

    async def handle(self, message: str) -> None:
        client_event_id: str | None = None
        try:
            event = parse_event(message)
            client_event_id = (
                event.get("event_id") if isinstance(event.get("event_id"), str) else None
            )
            await self._dispatch(event)
        except StepAudioError as exc:
            await self.send_error(exc, client_event_id)

    async def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "input_audio_buffer.append":
            await self._append(event.get("audio"))
        elif kind == "input_audio_buffer.commit":
            await self.live.commit()
        elif kind == "input_audio_buffer.clear":
            await self.live.clear()
        elif kind == "session.close":
            # Ours for transcription sessions (OpenAI's translation sessions have it): the
            # last turns transcribed, the session saved if asked, then closed.
            await self.live.drain()
            await self._save()
            await self.send({"type": "session.closed"})
            await self.ws.close(1000)
            raise WebSocketDisconnect(1000)
        elif kind in ("session.update", "transcription_session.update"):
            vad = self.config.vad
            session = object_param(event.get("session"), "session")
            if kind == "session.update":
                self.config.update_current(session)
            else:
                self.config.update_older(session)
            if self.config.vad != vad:
                self.live.vad = StreamingVad(self.config.vad) if self.config.vad else None
            updated = kind.replace(".update", ".updated")
            await self.send({"type": updated, "session": self.config.as_dict()})
        else:
            raise UnknownEvent(f"Unknown event type '{kind[:64]}'.", param="type")

    async def _append(self, audio: object) -> None:
        data = appended_audio(audio, self.limits.max_append_mb)
        samples = self.config.audio.samples(data)
        if self.recording is not None:
            self.recording.write(samples)
        await self.live.append(samples)

    # -- transcription and server events -------------------------------------------------

    async def _transcribe(self, samples: Any, final: bool) -> Heard | None:
        params = ProcessParams(
            mode=Mode.ASR,
            language=self.config.language,
            # The client's prompt, then what was said before this turn.
            prompt=" ".join(filter(None, [self.config.prompt, self.live.context])) or None,
            word_timestamps=WORDS in self.config.include,
        )
        live, lifecycle = live_state(self.services), self.services.lifecycle
        return await live.transcribe(
            lifecycle, samples, params, final=final, face="realtime", owner=self.owner
        )

    async def _on_live(self, event: LiveEvent) -> None:
        wire = _wire(event)
        if isinstance(event, Completed) and WORDS in self.config.include:
            # Ours, where OpenAI has none: each word's times, from the session's start.
            offset = event.start_ms / 1000
            wire["words"] = [
                {
                    "word": w.word,
                    "start": round(offset + w.start, 3),
                    "end": round(offset + w.end, 3),
                }
                for w in event.words
            ]
        if isinstance(event, Completed) and self.prints and event.audio is not None:
            # Ours: who said it, when the voice is one of the key's known speakers.
            wire["speaker"], wire["speaker_confidence"] = await self._speaker(event.audio)
        await self.send(wire)

    async def _speaker(self, audio: np.ndarray) -> tuple[str | None, float | None]:
        vector, speech_s = await self.services.pipeline.speakers.voice_of(audio)
        if vector is None or speech_s < MIN_TURN_SPEECH_S:
            return None, None
        found = match(vector[None, :], self.prints)
        if 0 not in found:
            return None, None
        name, score = found[0]
        return name, round(score, 3)

    async def send(self, event: dict[str, Any]) -> None:
        await self.events.send(event)

    async def send_error(self, exc: StepAudioError, client_event_id: str | None = None) -> None:
        await self.events.send_error(exc, client_event_id)


def _wire(event: LiveEvent) -> dict[str, Any]:
    """A live event as OpenAI's server event."""
    item = "conversation.item.input_audio_transcription"
    match event:
        case SpeechStarted(item_id, ms):
            return {
                "type": "input_audio_buffer.speech_started",
                "item_id": item_id,
                "audio_start_ms": ms,
            }
        case SpeechStopped(item_id, ms):
            return {
                "type": "input_audio_buffer.speech_stopped",
                "item_id": item_id,
                "audio_end_ms": ms,
            }
        case Committed(item_id, previous):
            return {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": previous,
            }
        case Cleared():
            return {"type": "input_audio_buffer.cleared"}
        case Delta(item_id, delta):
            return {"type": f"{item}.delta", "item_id": item_id, "content_index": 0, "delta": delta}
        case Completed(item_id, transcript, seconds):
            usage = {"type": "duration", "seconds": round(seconds, 3)}
            return {
                "type": f"{item}.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": transcript,
                "usage": usage,
            }
        case Failed(item_id, error):
            return {
                "type": f"{item}.failed",
                "item_id": item_id,
                "content_index": 0,
                "error": error.to_dict(),
            }
    raise AssertionError(event)
