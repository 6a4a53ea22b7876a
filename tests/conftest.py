from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from stepaudio.api import create_app
from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.config import Settings
from stepaudio.engines.embedded import EmbeddedEngine
from stepaudio.testing.longaudio import build
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip

MODEL_FIXTURES = frozenset({"embedded", "whisper_dir", "diarizer"})
"""Fixtures that load real models (Whisper and the text model, here or in a child process;
the speaker models): a test using one is a ``model`` test, run by ``make test-heavy`` in
CI, not by ``make test``."""


def pytest_configure(config: pytest.Config) -> None:
    # One models directory for every service the tests start (in-process and children):
    # assembling the 1.1 GB text model into each temporary data_dir would cost seconds and
    # gigabytes each time. What is there is verified by size and SHA-256 before use.
    os.environ.setdefault(
        "STEPAUDIO_MODELS_DIR", str(Path(tempfile.gettempdir()) / "stepaudio-test-models")
    )
    # The suite's services run the smaller Qwen (2-3x faster on two cores): most tests are
    # about routes, formats and bookkeeping. tests/engines/test_text_quality.py runs the
    # default model on its own server, for the answers a user gets out of the box.
    os.environ.setdefault("STEPAUDIO_LLM__MODEL", "qwen-0.5b")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The fast tier is decided by what a test uses, not by a list kept by hand: whatever
    # reaches the real models is marked ``model``.
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)


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


@pytest.fixture(scope="session")
def scripted_server(settings: Settings) -> Iterator[tuple[str, ScriptedEngine]]:
    """The real service on a loopback port, on a scripted engine (no model): for tests
    whose subject is the service, not the model's words. The engine records its jobs."""
    engine = ScriptedEngine()
    with serve_in_thread(create_app(settings, engine=engine), settings=settings) as url:
        yield url, engine


@pytest.fixture
def scripted_client(scripted_server: tuple[str, ScriptedEngine]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=scripted_server[0], timeout=60) as c:
        yield c


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=300) as c:
        yield c


@pytest.fixture(scope="session")
def minute() -> np.ndarray:
    """One minute of real speech (JFK and a sonnet, pauses between), for building files."""
    pcm, _ = build([clip("en/jfk.flac"), clip("en/sonnet_1.mp3")], 60)
    return pcm[: 60 * SAMPLE_RATE]
