"""Nothing is lost on a crash: real `stepaudio serve` / `stepaudio worker` processes,
killed with SIGKILL (or stopped with SIGTERM) mid-task, then started again (SQLite)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from stepaudio.config import Settings
from stepaudio.tasks.db import create_db_engine
from stepaudio.tasks.store import TaskStore
from stepaudio.testing.encode import write_audio
from stepaudio.testing.longaudio import build
from tests.helpers import clip
from tests.tasks.conftest import ServiceProcess, wait_for

WINDOW_S = 8


@pytest.fixture(scope="module")
def long_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 45 s of real speech: six or so 8 s windows, each a separate Whisper call."""
    pcm, _ = build([clip("en/jfk.flac"), clip("en/sr_english.wav")], min_seconds=45)
    return write_audio(pcm, tmp_path_factory.mktemp("long") / "long.wav")


def open_store(env: dict[str, str]) -> TaskStore:
    data = Path(env["STEPAUDIO_DATA_DIR"])
    settings = Settings(data_dir=data, _env_file=None)
    return TaskStore(create_db_engine(f"sqlite:///{data / 'tasks.db'}"), settings)


def submit(url: str, path: Path, **fields) -> str:
    with open(path, "rb") as f:
        r = httpx.post(f"{url}/api/task", files={"audio": (path.name, f)}, data=fields, timeout=60)
    assert r.status_code == 202, r.text
    return r.json()["task_id"]


def windows_done(n: int) -> Callable[[dict], bool]:
    return lambda view: view["progress"]["done"] >= n


def finished(view: dict) -> bool:
    return view["status"] in ("completed", "failed", "cancelled")


@pytest.mark.heavy
def test_kill_9_mid_task_then_restart_completes_once_without_redoing_windows(
    services, service_env: dict[str, str], long_audio: Path, webhook_receiver
):
    hook_url, received = webhook_receiver
    first: ServiceProcess = services("serve", service_env)
    task_id = submit(
        first.url,
        long_audio,
        mode="asr",
        language="en",
        segment_duration=WINDOW_S,
        parallel=1,
        webhook_url=hook_url,
    )
    view = wait_for(first.url, task_id, windows_done(2), timeout=120)
    first.kill()
    store = open_store(service_env)
    try:
        before = {w.index: w for w in store.windows(task_id)}
        total = view["progress"]["total"]
        assert 2 <= len(before) < total, (before, view)
        assert store.get(task_id).status == "processing"  # as the dead worker left it

        second = services("serve", service_env)
        done = wait_for(second.url, task_id, finished, timeout=180)
        assert done["status"] == "completed", done
        assert done["attempts"] == 2
        assert "ask not what your country" in done["result"]["answer"].lower()
        assert done["result"]["windows"] == total == done["progress"]["total"]

        after = store.windows(task_id)
        assert [w.index for w in after] == list(range(total))
        # Every window computed exactly once: those finished before the kill were loaded.
        assert all(w.computations == 1 for w in after), after
        for w in after:
            if w.index in before:
                assert w.attempt == 1 and w.computed_at == before[w.index].computed_at
            else:
                assert w.attempt == 2

        # The webhook: once, for the completed task, even though two processes ran it.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not received:
            time.sleep(0.1)
        time.sleep(1.5)
        assert [(p["task_id"], p["status"]) for p in received] == [(task_id, "completed")]
        second.terminate()  # uvicorn re-raises SIGTERM after its graceful shutdown
        assert "Application shutdown complete" in second.output()
    finally:
        store.close()


@pytest.mark.heavy
def test_kill_9_right_after_the_202_loses_nothing(services, service_env: dict[str, str]):
    first = services("serve", service_env)
    task_id = submit(first.url, clip("en/jfk.flac"), mode="asr", language="en")
    first.kill()
    second = services("serve", service_env)
    done = wait_for(second.url, task_id, finished, timeout=120)
    assert done["status"] == "completed", done
    assert "ask not what your country" in done["result"]["answer"].lower()


@pytest.mark.heavy
def test_a_stopped_worker_hands_its_task_back(
    services, service_env: dict[str, str], long_audio: Path
):
    """`stepaudio worker` alone beside an API-only `serve`; SIGTERM mid-task hands the task
    back at once (no lease to wait out, no attempt spent); the next worker finishes it."""
    api = services("serve", {**service_env, "STEPAUDIO_TASK_WORKERS": "0"})
    worker_env = {**service_env, "STEPAUDIO_TASK_LEASE_S": "600"}  # only a handback frees it
    worker = services("worker", worker_env, http=False)
    task_id = submit(
        api.url, long_audio, mode="asr", language="en", segment_duration=WINDOW_S, parallel=1
    )
    wait_for(api.url, task_id, windows_done(1), timeout=120)
    assert worker.terminate() == 0
    store = open_store(service_env)
    try:
        task = store.get(task_id)
        assert task.status == "pending" and task.attempts == 0, task
        saved = {w.index for w in store.windows(task_id)}
        assert saved

        services("worker", worker_env, http=False)
        done = wait_for(api.url, task_id, finished, timeout=180)
        assert done["status"] == "completed" and done["attempts"] == 1, done
        assert all(w.computations == 1 for w in store.windows(task_id))
    finally:
        store.close()
