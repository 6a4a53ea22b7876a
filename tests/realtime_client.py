"""A test's side of ``/v1/realtime`` over a synchronous WebSocket: send events, append
audio, commit turns and read until an event comes."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from websockets.sync.client import ClientConnection

COMPLETED = "conversation.item.input_audio_transcription.completed"


def send(ws: ClientConnection, **event: Any) -> None:
    ws.send(json.dumps(event))


def append(ws: ClientConnection, data: bytes, step: int = 9600) -> None:
    for i in range(0, len(data), step):
        send(
            ws,
            type="input_audio_buffer.append",
            audio=base64.b64encode(data[i : i + step]).decode(),
        )


def until(
    ws: ClientConnection, kind: str, timeout: float = 30, *, errors: bool = True
) -> tuple[dict, list[dict]]:
    """Events up to the first of ``kind`` (it, and all before it). ``errors=False``: an
    ``error`` event on the way fails the test at once."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        event = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        seen.append(event)
        assert errors or event["type"] != "error", event
        if event["type"] == kind:
            return event, seen


def manual(ws: ClientConnection) -> None:
    """Turns committed by the client (no server VAD)."""
    send(
        ws,
        type="session.update",
        session={"type": "transcription", "audio": {"input": {"turn_detection": None}}},
    )


def transcribed(ws: ClientConnection, data: bytes, timeout: float = 120) -> dict:
    """One committed turn of ``data`` (24 kHz pcm16), its ``completed`` event."""
    append(ws, data, step=48000)
    send(ws, type="input_audio_buffer.commit")
    return until(ws, COMPLETED, timeout, errors=False)[0]
