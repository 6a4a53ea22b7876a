"""The task API over real HTTP, with in-process workers (SQLite).

The subject is the task API (queueing, keys, idempotency, cancellation, webhooks,
retries), not the model's words: the service runs on a scripted engine, whose answer
describes the window it was sent (``heard 11.00 s, rms 1234``) and which keeps every job.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from stepaudio.api import create_app
from stepaudio.config import Settings
from stepaudio.engines.base import WindowJob
from stepaudio.errors import StepAudioError
from stepaudio.params import Mode
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip

SEED_KEYS = {"status", "answer", "thinking", "full_response", "elapsed_time"}
A = {"Authorization": "Bearer key-a"}
B = {"X-API-Key": "key-b"}
FINISHED = {"completed", "failed", "cancelled"}


def task_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "api_keys": ["key-a", "key-b"],
        "task_lease_s": 3,
        "task_heartbeat_s": 1,
        "task_poll_s": 0.2,
        "task_retry_backoff_s": 0,
        "webhook_backoff_s": 0.2,
        "webhook_timeout_s": 5,
        "webhook_allow_hosts": ["127.0.0.1"],  # the test receivers run on loopback
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def exploding_engine() -> ScriptedEngine:
    """A scripted engine whose every window fails inside the engine."""
    engine = ScriptedEngine(name="exploding")

    def explode(job: WindowJob) -> None:
        # The engine keeps each job before answering: the count is this call's number.
        raise StepAudioError(f"engine exploded (call {len(engine.windows)})", code="engine_crash")

    engine.on_window = explode
    return engine


def heard(text: str) -> float:
    """The seconds of audio a scripted window's answer says it heard."""
    found = re.fullmatch(r"heard (\S+) s, rms (\S+)", text)
    assert found, text
    return float(found[1])


@pytest.fixture(scope="module")
def tasks_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, ScriptedEngine]]:
    settings = task_settings(tmp_path_factory.mktemp("tasks-api"))
    engine = ScriptedEngine()
    with serve_in_thread(create_app(settings, engine=engine)) as url:
        yield url, engine


@pytest.fixture
def engine(tasks_server: tuple[str, ScriptedEngine]) -> ScriptedEngine:
    """The module server's scripted engine, with no job recorded yet."""
    engine = tasks_server[1]
    engine.windows.clear()
    engine.texts.clear()
    return engine


@pytest.fixture
def api(tasks_server: tuple[str, ScriptedEngine], engine: ScriptedEngine) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tasks_server[0], timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def hooks() -> Iterator[tuple[str, list[dict]]]:
    """A webhook receiver that refuses the first call it gets (so retries are shown)."""
    received: list[dict] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> JSONResponse:
        received.append(await request.json())
        return JSONResponse({}, status_code=500 if len(received) == 1 else 200)

    with serve_in_thread(app) as url:
        yield f"{url}/hook", received


def submit(api: httpx.Client, path: Path, headers=A, **fields: Any) -> httpx.Response:
    with open(path, "rb") as f:
        return api.post("/api/task", files={"audio": (path.name, f)}, data=fields, headers=headers)


def wait(api: httpx.Client, task_id: str, headers=A, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = api.get(f"/api/task/{task_id}", headers=headers)
        assert r.status_code == 200, r.text
        if r.json()["status"] in FINISHED:
            return r.json()
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} did not finish: {r.json()}")


def test_a_task_runs_to_the_same_result_as_process(api: httpx.Client, engine: ScriptedEngine):
    fields = {"mode": "asr", "language": "en", "temperature": 0.2, "top_p": 0.8}
    r = submit(api, clip("en/jfk.flac"), **fields)
    assert r.status_code == 202, r.text
    assert r.json().keys() == {"task_id", "status"} and r.json()["status"] == "pending"
    view = wait(api, r.json()["task_id"])
    assert view["status"] == "completed", view
    result = view["result"]
    assert result.keys() >= SEED_KEYS and result["status"] == "success"
    assert heard(result["answer"]) == pytest.approx(11.0, abs=0.05)  # the whole recording
    # The seed's async path ignored the sampling values; ours keeps them, to the engine.
    for params in (view["params"], result["params"]):
        assert params["temperature"] == 0.2 and params["top_p"] == 0.8
    [job] = engine.windows
    assert job.mode is Mode.ASR and job.params.language == "en"
    assert job.params.temperature == 0.2 and job.params.top_p == 0.8
    with open(clip("en/jfk.flac"), "rb") as f:
        direct = api.post("/api/process", files={"audio": ("jfk.flac", f)}, data=fields, headers=A)
    assert direct.status_code == 200, direct.text
    assert direct.json()["answer"] == result["answer"]
    assert engine.windows[1].params == job.params
    assert view["progress"]["done"] == view["progress"]["total"] == result["windows"]
    assert view["attempts"] == 1 and view["error"] is None
    assert view["timings"]["total"] >= view["timings"]["processing"] > 0


def test_another_keys_task_is_a_404(api: httpx.Client):
    task_id = submit(api, clip("en/sr_english.wav"), mode="asr").json()["task_id"]
    for method in ("GET", "DELETE"):
        r = api.request(method, f"/api/task/{task_id}", headers=B)
        assert r.status_code == 404, r.text
        assert r.json()["status"] == "error" and r.json()["error"]["type"] == "not_found_error"
    assert task_id not in [t["task_id"] for t in api.get("/api/tasks", headers=B).json()["tasks"]]
    assert api.get("/api/task/does-not-exist", headers=A).status_code == 404
    assert api.get(f"/api/task/{task_id}").status_code == 401
    wait(api, task_id)


def test_idempotency_key_returns_the_same_task(api: httpx.Client):
    headers = {**A, "Idempotency-Key": "upload-42"}
    first = submit(api, clip("en/sr_english.wav"), headers=headers, mode="asr")
    again = submit(api, clip("en/sr_english.wav"), headers=headers, mode="asr")
    assert first.status_code == again.status_code == 202
    assert first.json()["task_id"] == again.json()["task_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = submit(
        api, clip("en/sr_english.wav"), headers={**B, "Idempotency-Key": "upload-42"}, mode="asr"
    )
    assert other.json()["task_id"] != first.json()["task_id"]
    wait(api, first.json()["task_id"])
    wait(api, other.json()["task_id"], headers=B)


def test_list_and_cancel(api: httpx.Client, engine: ScriptedEngine):
    # A second a window, one at a time: the task's three 5 s windows of 11 s would take
    # 3 s, and it is cancelled while its first one runs.
    engine.delay_s = 1
    try:
        r = submit(api, clip("en/jfk.flac"), mode="asr", segment_duration=5, parallel=1)
        task_id = r.json()["task_id"]
        deadline = time.monotonic() + 10
        while not engine.windows:
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.02)
        r = api.delete(f"/api/task/{task_id}", headers=A)
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        time.sleep(2.5)  # a worker that had it notices at its next heartbeat and stops
        view = api.get(f"/api/task/{task_id}", headers=A).json()
        assert view["status"] == "cancelled" and view["result"] is None
        # Stopped: its third window, due 2 s after the first, was never sent.
        assert len(engine.windows) < 3
    finally:
        engine.delay_s = 0
    listed = api.get("/api/tasks", headers=A, params={"status": "cancelled"}).json()
    assert task_id in [t["task_id"] for t in listed["tasks"]]
    assert all(t["status"] == "cancelled" and "result" not in t for t in listed["tasks"])
    assert api.get("/api/tasks", headers=A, params={"status": "bogus"}).status_code == 400


def test_undecodable_audio_is_refused_before_queueing(api: httpx.Client, tmp_path: Path):
    bad = tmp_path / "noise.mp3"
    bad.write_bytes(b"this is not audio at all" * 100)
    before = api.get("/api/tasks", headers=A).json()["count"]
    r = submit(api, bad, mode="asr")
    assert r.status_code == 400 and r.json()["error"]["code"].startswith("invalid")
    assert api.get("/api/tasks", headers=A).json()["count"] == before
    r = submit(api, clip("en/sr_english.wav"), webhook_url="ftp://example.com/x")
    assert r.status_code == 400 and r.json()["error"]["param"] == "webhook_url"


def test_webhook_is_called_once_on_completion_with_retries(
    api: httpx.Client, hooks: tuple[str, list[dict]]
):
    url, received = hooks
    task_id = submit(api, clip("en/sr_english.wav"), mode="asr", webhook_url=url).json()["task_id"]
    wait(api, task_id)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if api.get(f"/api/task/{task_id}", headers=A).json()["webhook"]["state"] != "pending":
            break
        time.sleep(0.2)
    view = api.get(f"/api/task/{task_id}", headers=A).json()
    assert view["webhook"] == {"url": url, "state": "delivered"}
    calls = [p for p in received if p["task_id"] == task_id]
    assert len(calls) == 2  # the first answered 500, the retry 200; then never again
    assert calls[-1]["status"] == "completed"
    assert calls[-1]["result"] == view["result"]
    assert heard(calls[-1]["result"]["answer"]) == pytest.approx(2.74, abs=0.05)


def test_a_task_that_always_fails_ends_failed_after_n_attempts(tmp_path: Path):
    engine = exploding_engine()
    settings = task_settings(tmp_path, task_max_attempts=3)
    with (
        serve_in_thread(create_app(settings, engine=engine)) as url,
        httpx.Client(base_url=url, timeout=60) as api,
    ):
        task_id = submit(api, clip("en/sr_english.wav"), mode="asr").json()["task_id"]
        view = wait(api, task_id, timeout=60)
    assert view["status"] == "failed" and view["attempts"] == 3
    assert view["error"]["code"] == "engine_crash"
    assert view["error"]["message"] == "engine exploded (call 3)"
    assert view["result"] is None and len(engine.windows) == 3
