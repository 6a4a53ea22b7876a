"""Run an ASGI app with uvicorn on a free loopback port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from stepaudio.testing.scripted import ScriptedEngine


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ThreadedServer:
    """A real uvicorn server; ``start()`` waits until it accepts, ``stop()`` until it is gone."""

    def __init__(self, app, host: str = "127.0.0.1", port: int | None = None, settings: Any = None):
        self.app = app
        self.settings = settings
        """The service's ``Settings``: serve with its limits, as ``stepaudio serve`` does."""
        self.host = host
        self.port = port or free_port(host)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30) -> None:
        if self.settings is not None:
            from stepaudio.api.server import uvicorn_config

            config = uvicorn_config(
                self.app, self.settings, self.host, self.port, log_level="warning", lifespan="on"
            )
        else:
            config = uvicorn.Config(
                self.app, host=self.host, port=self.port, log_level="warning", lifespan="on"
            )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.02)

    def stop(self, timeout: float = 30) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)
        self._server = self._thread = None


@contextmanager
def serve_in_thread(
    app, host: str = "127.0.0.1", port: int | None = None, settings: Any = None
) -> Iterator[str]:
    server = ThreadedServer(app, host, port, settings)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def serve_scripted(
    data_dir: Path, engine: ScriptedEngine | None = None, **settings: Any
) -> Iterator[tuple[str, ScriptedEngine]]:
    """The real service on a loopback port, on a scripted engine (default answers unless
    ``engine`` says otherwise), with these settings: ``(url, engine)``."""
    from stepaudio.api import create_app
    from stepaudio.config import Settings

    engine = engine or ScriptedEngine()
    config = Settings(data_dir=data_dir, _env_file=None, **settings)
    with serve_in_thread(create_app(config, engine=engine), settings=config) as url:
        yield url, engine
