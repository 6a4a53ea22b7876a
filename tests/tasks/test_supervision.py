"""Finding 7: when a worker cannot renew its lease (the database is locked or away), the
run it supervises must stop: otherwise, once the lease expires, another claim runs the
same task while the first still does.

The database failure is real: another connection holds SQLite's write lock longer than
the store's busy timeout, so heartbeats fail with "database is locked"."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import anyio

from stepaudio.config import Settings
from stepaudio.engines.base import ModelOutput, WindowJob
from stepaudio.params import ProcessParams
from stepaudio.pipeline.run import Pipeline
from stepaudio.service import Admission, Lifecycle
from stepaudio.tasks import AsyncTaskStore, TaskStore, WorkerPool
from stepaudio.testing.scripted import ScriptedEngine
from tests.helpers import clip
from tests.tasks.test_store import shown, upload


@dataclass
class SlowEngine(ScriptedEngine):
    """A scripted engine (no model) whose windows each take a while (``delay_s``): it
    counts how many windows of the task run at the same moment."""

    name: str = "slow"
    slots: int = 4  # room for two runs at once (each run itself takes one window at a time)
    active: int = 0
    most_active: int = 0

    async def run_window(self, job: WindowJob) -> ModelOutput:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            return await super().run_window(job)
        finally:
            self.active -= 1


def test_a_failing_heartbeat_stops_the_run_before_the_task_is_taken_again(tmp_path: Path):
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        task_lease_s=2,
        task_heartbeat_s=0.3,
        task_poll_s=0.1,
        task_retry_backoff_s=0,
        task_db_busy_timeout_s=0.2,
    )
    store = TaskStore.open(settings)
    engine = SlowEngine(delay_s=2.0)  # outlasts the lock: no write during it
    # parallel=1: a run works on one window at a time, so two at once means two runs. The
    # 11 s in two windows: a run not stopped would still be at work when the lease expires.
    params = ProcessParams(mode="asr", language="en", segment_duration=10, parallel=1)
    task, _ = store.create(
        owner="alice",
        params=params.model_dump(mode="json"),
        **upload(tmp_path, clip("en/jfk.flac").read_bytes(), "jfk.flac"),
    )
    task_id = task.task_id

    async def scenario() -> dict:
        pool = WorkerPool(
            AsyncTaskStore(store),
            Lifecycle(Pipeline(engine, settings), Admission(4)),
            settings,
            count=2,
        )
        pool.start()
        try:
            while not engine.windows:
                await asyncio.sleep(0.02)
            # The database goes away for a while (longer than a heartbeat and its busy
            # timeout, shorter than the lease).
            lock = sqlite3.connect(tmp_path / "tasks.db", isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")
            await asyncio.sleep(1.2)
            lock.execute("COMMIT")
            lock.close()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                view = shown(await anyio.to_thread.run_sync(store.get, task_id))
                if view["status"] in ("completed", "failed"):
                    return view
                await asyncio.sleep(0.1)
            raise AssertionError(f"task not finished: {view}")
        finally:
            await pool.stop()

    try:
        view = asyncio.run(scenario())
    finally:
        store.close()
    assert engine.most_active == 1, "the same task ran twice at once"
    assert view["status"] == "completed", view
    assert view["attempts"] == 2  # the stopped run, then the one after its lease expired
