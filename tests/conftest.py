from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stepaudio.api import create_app
from stepaudio.config import Settings
from stepaudio.engines.embedded import EmbeddedEngine
from stepaudio.testing.server import serve_in_thread


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stepaudio-data")


@pytest.fixture(scope="session")
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, _env_file=None)


@pytest.fixture(scope="session")
def embedded(settings: Settings) -> EmbeddedEngine:
    """One embedded engine for the whole run: models load once, as in the service."""
    return EmbeddedEngine.from_settings(settings)


@pytest.fixture(scope="session")
def server(settings: Settings, embedded: EmbeddedEngine) -> Iterator[str]:
    """The real service on a loopback port, on the embedded engine."""
    with serve_in_thread(create_app(settings, engine=embedded), settings=settings) as url:
        yield url


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=300) as c:
        yield c
