"""What the realtime WebSocket faces share: accepting a session (its place among the live
sessions), reading a client event, and sending server events one at a time."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import secrets
import time
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketDisconnected, WebSocketState

from stepaudio.api.errors import websocket_error
from stepaudio.api.services import Services
from stepaudio.errors import (
    BadRequest,
    InvalidParameter,
    PayloadTooLarge,
    QueueFull,
    StepAudioError,
)
from stepaudio.live.state import LiveState
from stepaudio.service import Ticket


class UnknownEvent(BadRequest):
    default_code = "unknown_event"


def live_state(services: Services) -> LiveState:
    """What this service's live sessions share, made on first use."""
    if services.live is None:
        services.live = LiveState.from_settings(services.settings.live)
    return services.live


def event_id() -> str:
    return "event_" + secrets.token_hex(10)


def parse_event(message: str) -> dict[str, Any]:
    """A client event: a JSON object with a ``type``."""
    try:
        event = json.loads(message)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"The event is not JSON: {exc.msg}.", code="invalid_json") from None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise BadRequest("An event is a JSON object with a 'type'.", param="type")
    return event


def appended_audio(audio: object, max_mb: float) -> bytes:
    """The bytes of an ``…input_audio_buffer.append`` event's ``audio`` (base64), its size
    counted before it is decoded."""
    if not isinstance(audio, str):
        raise InvalidParameter("'audio' must be base64 audio.", param="audio")
    if len(audio) > max_mb * 1024 * 1024:
        raise PayloadTooLarge(f"An append may carry {max_mb:g} MiB at most.", param="audio")
    try:
        return base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameter("'audio' is not valid base64.", param="audio") from None


async def keep_pace(received_s: float, started: float, max_lead_s: float) -> None:
    """A client ahead of real time by more than ``max_lead_s`` waits here, before its next
    event is read: the socket pushes back, nothing piles up in memory."""
    lead = received_s - (time.monotonic() - started)
    if lead > max_lead_s:
        await asyncio.sleep(lead - max_lead_s)


async def accept(websocket: WebSocket, services: Services) -> Ticket | None:
    """The upgrade (the key was checked before it, by the guard) and the session's place;
    None, the socket closed with an ``error`` event, when there is none."""
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol="realtime" if "realtime" in offered else None)
    try:
        return live_state(services).sessions.admit(websocket.scope["state"]["caller"])
    except QueueFull as exc:
        exc.code = "session_limit_reached"
        await refuse(websocket, exc, 1013)
        return None


async def refuse(websocket: WebSocket, exc: StepAudioError, code: int) -> None:
    event, _ = websocket_error(exc)
    await websocket.send_text(json.dumps({**event, "event_id": event_id()}))
    await websocket.close(code)


class EventSender:
    """Server events on one socket, one at a time (the receive loop and the session's
    transcriptions both send); a client gone mid-send is the receive loop's to notice."""

    def __init__(self, websocket: WebSocket):
        self.ws = websocket
        self._lock = asyncio.Lock()

    async def send(self, event: dict[str, Any]) -> None:
        async with self._lock:
            if self.ws.client_state is not WebSocketState.CONNECTED:
                return
            with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected, RuntimeError):
                await self.ws.send_text(json.dumps({"event_id": event_id(), **event}))

    async def send_error(self, exc: StepAudioError, client_event_id: str | None = None) -> None:
        event, _ = websocket_error(exc)
        event["error"]["event_id"] = client_event_id
        await self.send(event)
