"""Finding 8: on SQLite, a large upload must not stall reads and heartbeats, and a database
that stays busy answers 503 with ``Retry-After``, never a 500."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from stepaudio.api import create_app
from stepaudio.config import Settings
from stepaudio.tasks import TaskStore
from stepaudio.tasks.models import Upload
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip
from tests.tasks.test_store import count, new_task, upload

UPLOAD_MB = 160


def _worst_while(action: Callable[[], object], probe: Callable[[], object]) -> float:
    """Run ``action``; meanwhile call ``probe`` over and over: its slowest call, in s."""
    times: list[float] = []
    done = threading.Event()

    def loop() -> None:
        while not done.is_set():
            started = time.perf_counter()
            probe()
            times.append(time.perf_counter() - started)

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        action()
    finally:
        done.set()
        thread.join(60)
    assert times, "the probe never ran"
    return max(times)


def test_a_large_upload_stalls_neither_reads_nor_heartbeats(tmp_path: Path):
    store = TaskStore.open(Settings(_env_file=None, data_dir=tmp_path))
    try:
        waiting = new_task(store, tmp_path, content=b"small")
        running = new_task(store, tmp_path, content=b"other")
        store.claim("w")  # the first
        claim = store.claim("w")
        assert claim is not None and claim.task_id == running
        big = upload(tmp_path, os.urandom(UPLOAD_MB << 20), "big.wav")

        def create() -> None:
            store.create(owner="bob", params={"mode": "asr"}, **big)

        def read() -> None:
            store.get(waiting, "alice")
            store.list_tasks("alice")

        worst_read = _worst_while(create, read)
        big = upload(tmp_path, os.urandom(UPLOAD_MB << 20), "big2.wav")
        worst_heartbeat = _worst_while(create, lambda: store.heartbeat(claim))
        print(
            f"\n{UPLOAD_MB} MiB upload: slowest read {worst_read * 1000:.0f} ms, "
            f"slowest heartbeat {worst_heartbeat * 1000:.0f} ms"
        )
        # Before: reads and heartbeats waited for the whole upload's transaction.
        # Measured on a shared 2-core machine: 2.2-2.6 s and 1.7-3.0 s before; 0.16-0.36 s
        # and 0.24-0.36 s after (160 MiB). The bound leaves room for a loaded machine.
        assert worst_read < 1.0 and worst_heartbeat < 1.0
        assert count(store, Upload) == 4
    finally:
        store.close()


def test_a_busy_database_is_a_503_with_retry_after(tmp_path: Path):
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        api_keys=["key-a"],
        task_workers=0,
        task_db_busy_timeout_s=0.3,
    )
    headers = {"Authorization": "Bearer key-a"}
    audio = clip("en/sense_and_sensibility_0880.wav").read_bytes()
    with (
        serve_in_thread(create_app(settings, engine=ScriptedEngine())) as url,
        httpx.Client(base_url=url, timeout=30, headers=headers) as api,
    ):
        r = api.post("/api/task", files={"audio": ("a.wav", audio)}, data={"mode": "asr"})
        assert r.status_code == 202, r.text
        task_id = r.json()["task_id"]
        # Another process holds the write lock (a long transaction, a backup, ...).
        lock = sqlite3.connect(tmp_path / "tasks.db", isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        try:
            busy = api.delete(f"/api/task/{task_id}")
            assert busy.status_code == 503, busy.text
            assert busy.headers["Retry-After"] == "1"
            assert busy.json()["error"]["code"] == "store_busy"
            assert busy.json()["status"] == "error"
            other = clip("en/sense_and_sensibility_0870.wav").read_bytes()
            busy = api.post("/api/task", files={"audio": ("b.wav", other)}, data={"mode": "asr"})
            assert busy.status_code == 503, busy.text
            # Plain reads are not writes: they go on during the lock.
            assert api.get(f"/api/task/{task_id}").status_code == 200
            assert api.get("/api/tasks").status_code == 200
        finally:
            lock.execute("COMMIT")
            lock.close()
        assert api.delete(f"/api/task/{task_id}").json()["status"] == "cancelled"
