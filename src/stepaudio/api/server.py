"""How the service listens: uvicorn with limits a public endpoint needs.

uvicorn closes idle keep-alive connections, but a new connection that sends its headers
one byte a minute is held forever, and its own concurrency limit answers in plain text.
``GuardedH11`` refuses connections past ``max_connections`` with a JSON 503 at once, and
closes any connection whose request line and headers are not complete within
``header_timeout_s`` of it opening (or of its previous response ending). The body's own
pace is the guard middleware's business (``guard.py``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from stepaudio.config import Settings

_BUSY = json.dumps(
    {
        "error": {
            "message": "The server has too many open connections; retry shortly.",
            "type": "server_busy",
            "param": None,
            "code": "too_many_connections",
        }
    }
).encode()
_BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"retry-after: 5\r\nconnection: close\r\ncontent-length: "
    + str(len(_BUSY)).encode()
    + b"\r\n\r\n"
    + _BUSY
)


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol, with a connection cap and a deadline on headers."""

    header_timeout_s: float = 10.0
    max_connections: int = 1000

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(_BUSY_RESPONSE)
            transport.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()  # headers complete: the body has its own limits

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline: asyncio.TimerHandle | None = self.loop.call_later(
            self.header_timeout_s, self._expire
        )

    def _disarm(self) -> None:
        deadline: asyncio.TimerHandle | None = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self.transport.close()


def protocol_for(settings: Settings) -> type[GuardedH11]:
    limits = {
        "header_timeout_s": settings.limits.header_timeout_s,
        "max_connections": settings.limits.max_connections,
    }
    return type("StepaudioHTTP", (GuardedH11,), limits)


def uvicorn_config(
    app: Any, settings: Settings, host: str, port: int, **extra: Any
) -> uvicorn.Config:
    """The one place the server's limits are set: ``stepaudio serve`` and the tests."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_for(settings),
        timeout_keep_alive=min(5, int(settings.limits.header_timeout_s) or 1),
        server_header=False,
        # WebSocket messages past the largest append are refused by the protocol itself;
        # pings find half-open clients (a session unanswered twice in a row is dropped).
        ws_max_size=int(settings.live.max_append_mb * 1024 * 1024) + 64 * 1024,
        ws_ping_interval=settings.live.ping_interval_s,
        ws_ping_timeout=settings.live.ping_interval_s,
        **extra,
    )
