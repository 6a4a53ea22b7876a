"""The task store's contract, run against SQLite and against the real PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from stepaudio.audio.cut import Span
from stepaudio.engines.base import ModelOutput, Segment, Usage
from stepaudio.errors import Conflict, NotFound
from stepaudio.tasks.db import migrate
from stepaudio.tasks.lease import LeaseLost
from stepaudio.tasks.models import Task, TaskWindow, Upload, UploadChunk
from stepaudio.tasks.outbox import WebhookQueue
from stepaudio.tasks.records import TaskRecord
from stepaudio.tasks.status import TaskStatus
from stepaudio.tasks.store import TaskStore
from stepaudio.tasks.task_view import TaskView

PARAMS = {"mode": "asr", "temperature": 0.3, "top_p": 0.5}


def upload(tmp_path: Path, content: bytes, name: str = "a.wav") -> dict:
    path = tmp_path / f"{hashlib.sha256(content).hexdigest()[:8]}-{name}"
    path.write_bytes(content)
    return {
        "upload": path,
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
        "filename": name,
    }


def new_task(store: TaskStore, tmp_path: Path, owner: str = "alice", content=b"RIFF..", **kw):
    task, created = store.create(owner=owner, params=PARAMS, **upload(tmp_path, content), **kw)
    assert created
    return task.task_id


def shown(task: TaskRecord) -> dict:
    """The task as the API and webhooks show it (JSON)."""
    return TaskView.from_record(task).model_dump(mode="json")


def count(store: TaskStore, column) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(column)).scalar_one()


def test_create_get_list_are_owner_scoped(make_store, tmp_path: Path):
    store = make_store()
    task_id = new_task(store, tmp_path)
    view = shown(store.get(task_id, "alice"))
    assert view["status"] == "pending" and view["params"] == PARAMS
    assert view["progress"] == {"done": 0, "total": None}
    assert view["result"] is None and view["error"] is None
    assert view["created_at"].endswith("+00:00")
    with pytest.raises(NotFound):
        store.get(task_id, "mallory")
    with pytest.raises(NotFound):
        store.cancel(task_id, "mallory")
    with pytest.raises(NotFound):
        store.get("no-such-task", "alice")
    assert [t.task_id for t in store.list_tasks("alice")] == [task_id]
    assert store.list_tasks("mallory") == []
    assert store.list_tasks("alice", status=TaskStatus.COMPLETED) == []


def test_idempotency_key_gives_the_same_task(make_store, tmp_path: Path):
    store = make_store()
    up = upload(tmp_path, b"one")
    first, created = store.create(owner="alice", params=PARAMS, idempotency_key="k1", **up)
    again, created_again = store.create(owner="alice", params=PARAMS, idempotency_key="k1", **up)
    assert created and not created_again
    assert again.task_id == first.task_id
    other, created_other = store.create(owner="bob", params=PARAMS, idempotency_key="k1", **up)
    assert created_other and other.task_id != first.task_id


def test_uploads_are_stored_once_per_content_and_read_back_whole(make_store, tmp_path: Path):
    store = make_store()
    content = os.urandom(2_500_000)  # three chunks
    a = new_task(store, tmp_path, content=content)
    new_task(store, tmp_path, owner="bob", content=content)
    assert count(store, Upload) == 1 and count(store, UploadChunk) == 3
    claim = store.claim("w")
    assert claim is not None and claim.task_id == a
    out = tmp_path / "back.wav"
    store.read_upload(claim.upload_sha256, out)
    assert out.read_bytes() == content


def test_claim_heartbeat_complete_once(make_store, tmp_path: Path):
    store = make_store()
    task_id = new_task(store, tmp_path)
    claim = store.claim("w1")
    assert claim is not None and claim.attempt == 1 and claim.params == PARAMS
    assert store.claim("w2") is None  # leased
    assert shown(store.get(task_id))["status"] == "processing"
    assert store.heartbeat(claim) and store.progress(claim, 2, 5)
    assert shown(store.get(task_id))["progress"] == {"done": 2, "total": 5}
    assert store.complete(claim, {"answer": "hi"})
    assert not store.complete(claim, {"answer": "again"})
    view = shown(store.get(task_id))
    assert view["status"] == "completed" and view["result"] == {"answer": "hi"}
    assert view["timings"]["total"] >= 0 and view["finished_at"]
    assert not store.heartbeat(claim)


def test_an_expired_lease_is_claimed_again_and_the_old_holder_writes_nothing(
    make_store, tmp_path: Path
):
    store = make_store(task_lease_s=0.3)
    task_id = new_task(store, tmp_path)
    old = store.claim("dead")
    assert old is not None
    time.sleep(0.4)
    new = store.claim("alive")
    assert new is not None and new.task_id == task_id and new.attempt == 2
    assert not store.heartbeat(old) and not store.progress(old, 1, 1)
    with pytest.raises(LeaseLost):
        store.save_window(old, 0, ModelOutput(text="stale"))
    assert not store.complete(old, {"answer": "stale"})
    assert store.complete(new, {"answer": "fresh"})
    assert shown(store.get(task_id))["result"] == {"answer": "fresh"}


def test_a_task_whose_workers_keep_dying_fails_after_max_attempts(make_store, tmp_path: Path):
    store = make_store(task_lease_s=0.2, task_max_attempts=2)
    task_id = new_task(store, tmp_path)
    for _ in range(2):
        assert store.claim("doomed") is not None
        time.sleep(0.3)
    assert store.claim("next") is None
    view = shown(store.get(task_id))
    assert view["status"] == "failed" and view["attempts"] == 2
    assert view["error"]["code"] == "worker_lost"


def test_failures_are_retried_then_fail_with_the_last_error(make_store, tmp_path: Path):
    store = make_store(task_max_attempts=3, task_retry_backoff_s=0)
    task_id = new_task(store, tmp_path)
    for attempt in (1, 2, 3):
        claim = store.claim("w")
        assert claim is not None and claim.attempt == attempt
        error = {"message": f"boom {attempt}", "type": "backend_error", "code": "x", "param": None}
        status = store.fail(claim, error, retry=True)
        assert status == ("failed" if attempt == 3 else "pending")
    view = shown(store.get(task_id))
    assert view["status"] == "failed" and view["attempts"] == 3
    assert view["error"]["message"] == "boom 3"
    assert store.claim("w") is None


def test_a_retry_waits_for_its_backoff(make_store, tmp_path: Path):
    store = make_store(task_retry_backoff_s=60)
    new_task(store, tmp_path)
    claim = store.claim("w")
    assert store.fail(claim, {"message": "later"}, retry=True) == "pending"
    assert store.claim("w") is None


def test_a_permanent_error_fails_at_once(make_store, tmp_path: Path):
    store = make_store()
    task_id = new_task(store, tmp_path)
    claim = store.claim("w")
    assert store.fail(claim, {"message": "bad audio"}, retry=False) == "failed"
    assert shown(store.get(task_id))["attempts"] == 1


def test_release_hands_back_without_counting_an_attempt(make_store, tmp_path: Path):
    store = make_store()
    task_id = new_task(store, tmp_path)
    claim = store.claim("stopping")
    assert store.release(claim)
    view = shown(store.get(task_id))
    assert view["status"] == "pending" and view["attempts"] == 0
    again = store.claim("other")
    assert again is not None and again.attempt == 1


def test_cancel(make_store, tmp_path: Path):
    store = make_store()
    pending = new_task(store, tmp_path, content=b"1")
    assert store.cancel(pending, "alice").status == "cancelled"
    running = new_task(store, tmp_path, content=b"2")
    claim = store.claim("w")
    assert claim.task_id == running
    assert store.cancel(running, "alice").status == "cancelled"
    assert not store.heartbeat(claim) and not store.complete(claim, {})
    done = new_task(store, tmp_path, content=b"3")
    claim = store.claim("w")
    store.complete(claim, {"answer": "x"})
    assert store.cancel(done, "alice").status == "completed"
    assert store.claim("w") is None


def test_delete_removes_a_finished_task_of_its_owner_only(make_store, tmp_path: Path):
    store = make_store()
    pending = new_task(store, tmp_path, content=b"1")
    with pytest.raises(Conflict) as refused:
        store.delete(pending, "alice")  # unfinished: cancel it first
    assert refused.value.code == "task_not_finished"
    claim = store.claim("w")
    store.complete(claim, {"answer": "x"})
    with pytest.raises(NotFound):
        store.delete(pending, "mallory")
    store.delete(pending, "alice")
    with pytest.raises(NotFound):
        store.get(pending)
    assert store.list_tasks("alice") == []


def test_windows_round_trip_and_count_their_computations(make_store, tmp_path: Path):
    store = make_store()
    task_id = new_task(store, tmp_path)
    claim = store.claim("w")
    output = ModelOutput(
        text="hello world",
        thinking="hmm",
        segments=[Segment(0.0, 1.5, "hello"), Segment(1.5, 2.0, "world")],
        language="en",
        usage=Usage(2.0, 10, 3),
        truncated=False,
        backend="b1",
    )
    assert store.load_window(task_id, 0) is None
    store.save_window(claim, 0, output)
    assert store.load_window(task_id, 0) == output
    store.save_window(claim, 0, output)
    rows = store.windows(task_id)
    assert [(r.index, r.attempt, r.computations) for r in rows] == [(0, 1, 2)]
    # A window is reused only for the same stretch of audio: a resumed job whose plan
    # came out differently must recompute it, not take another window's text.
    store.save_window(claim, 1, output, Span(300.0, 600.0))
    assert store.load_window(task_id, 1, Span(300.0, 600.0)) == output
    assert store.load_window(task_id, 1, Span(290.5, 580.0)) is None


def test_retention_removes_old_finished_tasks_and_unused_uploads(make_store, tmp_path: Path):
    store = make_store(task_retention_hours=0.2 / 3600)
    finished = new_task(store, tmp_path, content=b"old")
    claim = store.claim("w")
    store.save_window(claim, 0, ModelOutput(text="x"))
    store.complete(claim, {"answer": "x"})
    waiting = new_task(store, tmp_path, content=b"kept")
    time.sleep(0.3)
    assert store.sweep() == 1
    with pytest.raises(NotFound):
        store.get(finished)
    assert shown(store.get(waiting))["status"] == "pending"
    assert count(store, TaskWindow) == 0
    assert count(store, Upload) == 1 and count(store, UploadChunk) == 1


def test_a_webhook_is_handed_to_one_worker_at_a_time(make_store, tmp_path: Path):
    store = make_store(webhook_retries=1, webhook_backoff_s=0)
    queue = WebhookQueue(store)
    task_id = new_task(store, tmp_path, webhook_url="http://127.0.0.1:9/hook")
    assert queue.claim(5) == []  # not finished yet
    claim = store.claim("w")
    store.complete(claim, {"answer": "x"})
    [job] = queue.claim(5)
    assert job.task_id == task_id and job.attempt == 1 and job.event == "task.completed"
    assert job.payload["status"] == "completed" and job.payload["result"] == {"answer": "x"}
    assert queue.claim(5) == []  # held by that try
    # A failed try is due again after its backoff (here none); the last one fails for good.
    assert queue.record(job, False) == "pending"
    [again] = queue.claim(5)
    assert again.attempt == 2 and again.payload["event_id"] == job.payload["event_id"]
    assert queue.record(job, True) is None  # a stale try's word counts for nothing
    assert shown(store.get(task_id))["webhook"]["state"] == "pending"
    assert queue.record(again, False) == "failed"
    assert shown(store.get(task_id))["webhook"] == {
        "url": "http://127.0.0.1:9/hook",
        "state": "failed",
    }
    no_hook = new_task(store, tmp_path, content=b"other")
    store.complete(store.claim("w"), {})
    assert shown(store.get(no_hook))["webhook"] is None and queue.claim(5) == []


def test_concurrent_workers_complete_each_task_exactly_once(make_store, tmp_path: Path):
    store = make_store()
    ids = {new_task(store, tmp_path, content=f"clip {i}".encode()) for i in range(30)}
    completions: list[str] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        while (claim := store.claim(name)) is not None:
            if store.complete(claim, {"by": name}):
                with lock:
                    completions.append(claim.task_id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert Counter(completions) == Counter(ids)
    assert all(shown(store.get(i))["attempts"] == 1 for i in ids)
    with store.engine.connect() as conn:
        statuses = set(conn.execute(select(Task.status)).scalars())
    assert statuses == {"completed"}


def test_migrations_run_again_are_a_no_op(make_store):
    store = make_store()
    migrate(store.engine)
    migrate(store.engine)
    assert count(store, Task) == 0
