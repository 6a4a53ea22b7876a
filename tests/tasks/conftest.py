"""Task-store fixtures: a fresh SQLite file per test, and a PostgreSQL database of this
session's own (created on 127.0.0.1:5432, dropped at the end) shared by its tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import text

from stepaudio.config import Settings
from stepaudio.engines.local_models import whisper_base_dir
from stepaudio.tasks.db import create_db_engine, migrate
from stepaudio.tasks.store import TaskStore
from stepaudio.testing.server import free_port, serve_in_thread

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
TABLES = "task_windows, tasks, upload_chunks, uploads, voices"


def _admin() -> psycopg.Connection:
    return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[Callable[[], str]]:
    """A factory of fresh PostgreSQL databases (URLs); all are dropped at the end."""
    try:
        _admin().close()
    except psycopg.OperationalError as exc:
        # CI and these machines always have it: there, a missing server is a failure.
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {exc}")
    made: list[str] = []

    def make() -> str:
        name = f"stepaudio_test_{uuid.uuid4().hex[:12]}"
        with _admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"

    yield make
    with _admin() as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url(pg_database: Callable[[], str]) -> str:
    """One migrated database for the store tests; each test empties it first."""
    url = pg_database()
    engine = create_db_engine(url)
    migrate(engine)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., TaskStore]]:
    """``make_store(**settings)``: a store on an empty database of the parametrized kind."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    else:
        url = f"sqlite:///{tmp_path / 'tasks.db'}"
    engine = create_db_engine(url)
    migrate(engine)
    if request.param == "postgresql":
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {TABLES}"))

    def make(**overrides) -> TaskStore:
        settings = Settings(data_dir=tmp_path, database_url=url, _env_file=None, **overrides)
        return TaskStore(engine, settings)

    yield make
    engine.dispose()


# -- real service processes (crash and scale tests) -----------------------------------------


class ServiceProcess:
    """``stepaudio serve`` or ``stepaudio worker`` as a real child process."""

    def __init__(self, command: str, env: dict[str, str], log: Path, port: int | None = None):
        self.command = command
        self.port = port
        self.log = log
        self.env = env
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90, wait: bool = True) -> ServiceProcess:
        env = dict(self.env)
        if self.port is not None:
            env["STEPAUDIO_PORT"] = str(self.port)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stepaudio.cli", self.command],
                env=env,
                cwd=self.log.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if self.port is not None and wait:
            self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.command} did not start:\n{self.output()}")

    def kill(self) -> None:
        """kill -9: no shutdown code runs at all."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, and wait for the graceful exit."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture(scope="session")
def whisper_dir(settings: Settings) -> str:
    """The assembled embedded Whisper, so child processes skip assembling and checking it."""
    return str(whisper_base_dir(settings.models_path))


@pytest.fixture
def service_env(tmp_path: Path, whisper_dir: str) -> dict[str, str]:
    """Environment of a child service: its own data dir (SQLite there), short leases."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPAUDIO_")}
    env.update(
        STEPAUDIO_DATA_DIR=str(tmp_path / "data"),
        STEPAUDIO_MODELS_DIR=os.environ["STEPAUDIO_MODELS_DIR"],  # tests/conftest.py's
        STEPAUDIO_LLM__MODEL=os.environ["STEPAUDIO_LLM__MODEL"],
        STEPAUDIO_WHISPER_MODEL=whisper_dir,
        STEPAUDIO_WHISPER_BEAM_SIZE="1",  # greedy: the tests check bookkeeping, not accuracy
        STEPAUDIO_TASK_LEASE_S="3",
        STEPAUDIO_TASK_HEARTBEAT_S="1",
        STEPAUDIO_TASK_POLL_S="0.2",
        STEPAUDIO_TASK_RETRY_BACKOFF_S="0",
        STEPAUDIO_WEBHOOK_BACKOFF_S="0.2",
        STEPAUDIO_WEBHOOK_ALLOW_HOSTS='["127.0.0.1"]',  # the receivers run on loopback
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """``services(command, env, port=...)``: start a child; all are killed at the end."""
    started: list[ServiceProcess] = []

    def start(
        command: str, env: dict[str, str], *, http: bool = True, wait: bool = True
    ) -> ServiceProcess:
        n = len(started)
        proc = ServiceProcess(
            command, env, tmp_path / f"{command}-{n}.log", free_port() if http else None
        )
        started.append(proc)
        return proc.start(wait=wait)

    yield start
    for proc in started:
        proc.kill()


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, list[dict]]]:
    """A webhook endpoint that records every call (it always answers 200)."""
    received: list[dict] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> dict:
        received.append(await request.json())
        return {}

    with serve_in_thread(app) as url:
        yield f"{url}/hook", received


def wait_for(
    url: str, task_id: str, done: Callable[[dict], bool], timeout: float, headers=None
) -> dict:
    deadline = time.monotonic() + timeout
    view: dict = {}
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{url}/api/task/{task_id}", headers=headers, timeout=10)
            view = r.json()
            if r.status_code == 200 and done(view):
                return view
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} not as expected in {timeout} s: {view}")
