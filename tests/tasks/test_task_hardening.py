"""Findings 10 (per-key task quotas) and 13: cancellation webhooks, idempotency keys reused
for another request, and what a crash leaves behind."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stepaudio.api import create_app
from stepaudio.config import Settings
from stepaudio.tasks import AsyncTaskStore, TaskStore
from stepaudio.tasks.models import Upload, UploadChunk
from stepaudio.tasks.outbox import Outbox
from stepaudio.tasks.uploads import write as write_upload
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip
from tests.tasks.test_store import count, upload

A = {"Authorization": "Bearer key-a"}
B = {"Authorization": "Bearer key-b"}
SHORT = clip("en/sense_and_sensibility_0880.wav")  # 94 KiB
OTHER = clip("en/sense_and_sensibility_0870.wav")  # 222 KiB
THIRD = clip("en/librispeech-1995-1837-0001.wav")  # 273 KiB


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "api_keys": ["key-a", "key-b"],
        "task_workers": 0,  # nothing runs: the tasks stay pending
        "webhook_allow_hosts": ["127.0.0.1"],
        "task_poll_s": 0.1,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def gateway(request: pytest.FixtureRequest, tmp_path: Path):
    """A gateway with no worker (on a scripted engine: no window is ever run here)."""
    overrides = getattr(request, "param", {})
    engine = ScriptedEngine()
    with (
        serve_in_thread(create_app(settings_for(tmp_path, **overrides), engine=engine)) as url,
        httpx.Client(base_url=url, timeout=30) as api,
    ):
        yield api
    assert engine.windows == [] and engine.texts == []


def submit(api: httpx.Client, path: Path, headers=A, **fields: Any) -> httpx.Response:
    fields.setdefault("mode", "asr")
    return api.post(
        "/api/task", files={"audio": (path.name, path.read_bytes())}, data=fields, headers=headers
    )


@pytest.fixture
def worker_outbox(tmp_path: Path) -> Iterator[None]:
    """The webhook outbox of a worker process sharing the gateway's database."""
    stop = threading.Event()

    def run() -> None:
        async def main() -> None:
            store = TaskStore.open(settings_for(tmp_path))
            stopped = asyncio.Event()
            outbox = asyncio.create_task(Outbox(AsyncTaskStore(store), store.settings).run(stopped))
            while not stop.is_set():
                await asyncio.sleep(0.05)
            stopped.set()
            await outbox
            store.close()

        asyncio.run(main())

    thread = threading.Thread(target=run)
    thread.start()
    yield
    stop.set()
    thread.join(30)


def test_cancelling_a_task_calls_its_webhook(gateway, worker_outbox, webhook_receiver):
    url, received = webhook_receiver
    task_id = submit(gateway, SHORT, webhook_url=url).json()["task_id"]
    assert gateway.delete(f"/api/task/{task_id}", headers=A).json()["status"] == "cancelled"
    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    [payload] = received
    assert payload["task_id"] == task_id and payload["status"] == "cancelled"
    assert payload["event"] == "task.cancelled"
    # The receiver answers before the outbox records the delivery: wait for the record.
    while time.monotonic() < deadline:
        view = gateway.get(f"/api/task/{task_id}", headers=A).json()
        if view["webhook"]["state"] != "pending":
            break
        time.sleep(0.05)
    assert view["webhook"]["state"] == "delivered"


def test_an_idempotency_key_reused_for_another_request_is_a_409(gateway):
    key = {**A, "Idempotency-Key": "job-7"}
    first = submit(gateway, SHORT, headers=key)
    assert first.status_code == 202
    same = submit(gateway, SHORT, headers=key)
    assert same.status_code == 202 and same.json()["task_id"] == first.json()["task_id"]
    for other in (
        submit(gateway, SHORT, headers=key, mode="summarize"),  # other params
        submit(gateway, OTHER, headers=key),  # another file
    ):
        assert other.status_code == 409, other.text
        assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert gateway.get("/api/tasks", headers=A).json()["count"] == 1


def _headers_only(url: str, path: str, headers: dict[str, str], length: int) -> tuple[int, float]:
    """Send a request's headers announcing a large body, none of the body: the status the
    server answers with, and how long it took."""
    host, port = url.removeprefix("http://").split(":")
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: multipart/form-data; boundary=xyz",
        f"Content-Length: {length}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = conn.recv(4096).decode(errors="replace")
    return int(answer.split(" ", 2)[1]), time.monotonic() - started


@pytest.mark.parametrize("gateway", [{"max_pending_tasks_per_key": 2}], indirect=True)
def test_the_pending_task_quota_answers_429_before_the_upload(gateway):
    assert submit(gateway, SHORT).status_code == 202
    assert submit(gateway, OTHER).status_code == 202
    r = submit(gateway, THIRD)
    assert r.status_code == 429 and r.json()["error"]["code"] == "task_quota_exceeded"
    # Refused from the headers alone: 100 MiB announced, not one byte sent.
    status, took = _headers_only(str(gateway.base_url), "/api/task", A, 100 << 20)
    assert status == 429 and took < 5
    assert submit(gateway, THIRD, headers=B).status_code == 202  # other keys are not held
    # A finished (here: cancelled) task gives its place back.
    first = gateway.get("/api/tasks", headers=A).json()["tasks"][0]["task_id"]
    gateway.delete(f"/api/task/{first}", headers=A)
    assert submit(gateway, THIRD).status_code == 202


@pytest.mark.parametrize("gateway", [{"max_stored_mb_per_key": 0.4}], indirect=True)
def test_the_stored_bytes_quota_stores_nothing_over_it(gateway, tmp_path: Path):
    store = TaskStore.open(settings_for(tmp_path))
    try:
        assert submit(gateway, OTHER).status_code == 202  # 222 KiB of 400
        assert submit(gateway, OTHER).status_code == 202  # the same upload costs nothing more
        r = submit(gateway, THIRD)  # 222 + 273 > 400 KiB
        assert r.status_code == 429 and r.json()["error"]["code"] == "storage_quota_exceeded"
        assert count(store, Upload) == 1 and count(store, UploadChunk) == 1  # nothing stored
        big = tmp_path / "big.wav"
        big.write_bytes(THIRD.read_bytes() * 2)  # one upload larger than the whole quota
        r = submit(gateway, big)
        assert r.status_code == 413 and r.json()["error"]["code"] == "storage_quota_exceeded"
        assert count(store, Upload) == 1
        assert submit(gateway, THIRD, headers=B).status_code == 202
    finally:
        store.close()


def half_written(store: TaskStore, tmp_path: Path, content: bytes) -> None:
    """What a request that died between storing its upload's chunks and creating its task
    leaves: every chunk, but an upload not marked stored that no task uses."""
    up = upload(tmp_path, content)
    write_upload(store.engine, up["upload"], up["sha256"], up["size"])


def test_leftovers_of_a_crash_are_removed_at_start_and_by_the_sweep(tmp_path: Path):
    settings = settings_for(tmp_path, task_lease_s=0.2, scratch_max_age_hours=1)
    store = TaskStore.open(settings)
    # A writer that died half-way through an upload: an unstored upload no task uses.
    content = os.urandom(3 << 20)
    half_written(store, tmp_path, content)
    assert count(store, Upload) == 1 and count(store, UploadChunk) == 3
    # Scratch files: an old one left by a crash, and a fresh one in use.
    scratch = [tmp_path / "tmp" / "pcm-old.s16", tmp_path / "uploads" / "upload-old.wav"]
    fresh = tmp_path / "tmp" / "pcm-in-use.s16"
    for path in [*scratch, fresh]:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x" * 1000)
    two_hours_ago = time.time() - 7200
    for path in scratch:
        os.utime(path, (two_hours_ago, two_hours_ago))
    store.close()
    time.sleep(0.3)  # no writer touched the upload for a lease
    store = TaskStore.open(settings)  # a worker (re)starting
    try:
        assert count(store, Upload) == 0 and count(store, UploadChunk) == 0
        assert not any(p.exists() for p in scratch) and fresh.exists()
        half_written(store, tmp_path, b"again")
        os.utime(fresh, (two_hours_ago, two_hours_ago))
        time.sleep(0.3)
        store.sweep()
        assert count(store, Upload) == 0 and not fresh.exists()
    finally:
        store.close()
