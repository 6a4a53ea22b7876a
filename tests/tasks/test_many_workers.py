"""Several replicas on one PostgreSQL: two API processes, three worker processes, 24 tasks;
each task completes exactly once."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select

from stepaudio.tasks.db import create_db_engine
from stepaudio.tasks.models import Task, TaskWindow
from tests.helpers import clip

TASKS = 24  # eight a worker: enough to race on claims, uploads and webhooks


@pytest.mark.heavy
def test_two_apis_three_workers_many_tasks_each_completed_once(
    services,
    service_env: dict[str, str],
    pg_database: Callable[[], str],
    webhook_receiver,
):
    hook_url, received = webhook_receiver
    url = pg_database()
    env = {
        **service_env,
        "STEPAUDIO_DATABASE_URL": url,
        "STEPAUDIO_WHISPER_THREADS": "1",  # three workers share two cores
    }
    apis = [services("serve", {**env, "STEPAUDIO_TASK_WORKERS": "0"}, wait=False) for _ in "ab"]
    for _ in range(3):
        services("worker", {**env, "STEPAUDIO_TASK_WORKERS": "1"}, http=False)
    for api in apis:
        api.wait_healthy()

    audio = clip("en/sr_english.wav")

    def submit(i: int) -> str:
        with open(audio, "rb") as f:
            r = httpx.post(
                f"{apis[i % 2].url}/api/task",
                files={"audio": (f"clip-{i}.wav", f)},
                data={"mode": "asr", "language": "en", "webhook_url": hook_url},
                timeout=60,
            )
        assert r.status_code == 202, r.text
        return r.json()["task_id"]

    # Concurrent submissions of the same content also race on storing one upload.
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(submit, range(TASKS)))
    assert len(set(ids)) == TASKS
    print(f"{TASKS} tasks submitted in {time.monotonic() - started:.1f} s")

    engine = create_db_engine(url)
    try:
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                statuses = Counter(conn.execute(select(Task.status)).scalars())
            if statuses["completed"] == TASKS and len(received) >= TASKS:
                break
            time.sleep(0.5)
        assert statuses == {"completed": TASKS}, statuses
        print(f"{TASKS} tasks completed {time.monotonic() - started:.1f} s after the first")
        time.sleep(1.5)  # a duplicate webhook, if any, would arrive now

        with engine.connect() as conn:
            rows = conn.execute(select(Task.id, Task.attempts, Task.worker, Task.result)).all()
            windows = conn.execute(select(TaskWindow.task_id, TaskWindow.computations)).all()
        assert {r.id for r in rows} == set(ids)
        assert all(r.attempts == 1 for r in rows)
        # The clip says "one two three"; Whisper writes it in words or digits.
        assert all(r.result["answer"].strip() for r in rows), rows[0].result
        assert Counter(w.task_id for w in windows) == Counter(ids)  # one window each
        assert all(w.computations == 1 for w in windows)
        assert Counter(p["task_id"] for p in received) == Counter(ids)  # one call each
        # The work really was shared among the worker processes.
        processes = Counter(r.worker.rsplit(":", 2)[0] for r in rows)
        assert len(processes) >= 2, processes
        # Either API answers for any task (they share the store).
        view = httpx.get(f"{apis[1].url}/api/task/{ids[0]}", timeout=10).json()
        assert view["status"] == "completed"
    finally:
        engine.dispose()
