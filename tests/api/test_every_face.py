"""What every face shares, checked on every face: the audio it processed is counted (by
face, in ``/metrics``), every 429 carries ``Retry-After``, and a failure after a stream
began ends the stream with an error event, whatever the exception.

The real service on loopback, on a scripted engine: the subject is the lifecycle, not the
model. One server per module, with keys (so per-key shares and quotas apply).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stepaudio.api import create_app
from stepaudio.config import Settings
from stepaudio.engines.base import ModelOutput, WindowJob
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip

KEY, OTHER = "face-key", "face-other-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
JFK = clip("en/jfk.flac")  # 11.0 s
JFK_S = 11.0


class Switchable(ScriptedEngine):
    """The scripted engine, which the tests can make fail with any exception, or hold
    (awaiting, so the server's event loop stays free)."""

    fail: BaseException | None = None
    hold = threading.Event()

    async def run_window(self, job: WindowJob) -> ModelOutput:
        deadline = time.monotonic() + 30
        while not self.hold.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self.fail is not None:
            raise self.fail
        return await super().run_window(job)


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Switchable]]:
    data = tmp_path_factory.mktemp("faces")
    switch = Switchable()
    switch.hold = threading.Event()
    switch.hold.set()
    settings = Settings(
        data_dir=data,
        api_keys=[KEY, OTHER],
        max_pending_requests=2,
        max_pending_requests_per_key=1,
        max_pending_tasks_per_key=1,
        task_poll_s=0.1,
        _env_file=None,
    )
    with serve_in_thread(create_app(settings, engine=switch), settings=settings) as url:
        yield url, switch


def audio_seconds(client: httpx.Client) -> dict[str, float]:
    text = client.get("/metrics", headers=AUTH).text
    found = re.findall(r'^stepaudio_audio_seconds_total\{face="([^"]+)"\} (\S+)$', text, re.M)
    return {face: float(value) for face, value in found}


def counted(client: httpx.Client, face: str, before: dict[str, float]) -> float:
    return audio_seconds(client).get(face, 0.0) - before.get(face, 0.0)


def form_file() -> dict:
    return {"file": (JFK.name, JFK.read_bytes(), "audio/flac")}


def chat_body() -> dict:
    data = base64.b64encode(JFK.read_bytes()).decode()
    part = {"type": "input_audio", "input_audio": {"data": data, "format": "flac"}}
    return {"messages": [{"role": "user", "content": [{"type": "text", "text": "What?"}, part]}]}


def test_audio_seconds_are_counted_on_the_seed_route(faces):
    url, _ = faces
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
        before = audio_seconds(client)
        r = client.post("/api/process", files={"audio": (JFK.name, JFK.read_bytes())})
        assert r.status_code == 200, r.text
        assert counted(client, "seed", before) == pytest.approx(JFK_S, abs=0.1)
        # The streamed form counts as well, once.
        before = audio_seconds(client)
        r = client.post(
            "/api/process", files={"audio": (JFK.name, JFK.read_bytes())}, data={"stream": "true"}
        )
        assert "event: result" in r.text
        assert counted(client, "seed", before) == pytest.approx(JFK_S, abs=0.1)


@pytest.mark.parametrize("route", ["transcriptions", "translations"])
@pytest.mark.parametrize("stream", [False, True])
def test_audio_seconds_are_counted_on_v1_audio(faces, route: str, stream: bool):
    url, _ = faces
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
        before = audio_seconds(client)
        r = client.post(
            f"/v1/audio/{route}", files=form_file(), data={"stream": str(stream).lower()}
        )
        assert r.status_code == 200, r.text
        assert counted(client, f"v1_{route}", before) == pytest.approx(JFK_S, abs=0.1)


def test_audio_seconds_are_counted_on_chat(faces):
    url, _ = faces
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
        before = audio_seconds(client)
        r = client.post("/v1/chat/completions", json=chat_body())
        assert r.status_code == 200, r.text
        assert counted(client, "v1_chat", before) == pytest.approx(JFK_S, abs=0.1)


def test_audio_seconds_are_counted_for_tasks(faces):
    url, _ = faces
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
        before = audio_seconds(client)
        r = client.post("/api/task", files={"audio": (JFK.name, JFK.read_bytes())})
        assert r.status_code == 202, r.text
        task = r.json()["task_id"]
        deadline = time.monotonic() + 30
        while client.get(f"/api/task/{task}").json()["status"] != "completed":
            assert time.monotonic() < deadline, "the task did not complete"
            time.sleep(0.1)
        assert counted(client, "task", before) == pytest.approx(JFK_S, abs=0.1)


def test_a_refused_request_counts_no_audio(faces):
    url, _ = faces
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
        before = audio_seconds(client)
        r = client.post("/v1/audio/transcriptions", files={"file": ("x.wav", b"not audio")})
        assert r.status_code == 400
        assert audio_seconds(client) == before


# -- every 429 says when to come back ------------------------------------------------------


def _hold_one(url: str, key: str) -> threading.Thread:
    """A request of ``key`` held in the engine until the switch opens."""

    def post() -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            c.post(
                "/api/process",
                files={"audio": (JFK.name, JFK.read_bytes())},
                headers={"Authorization": f"Bearer {key}"},
            )

    thread = threading.Thread(target=post)
    thread.start()
    return thread


def _wait_busy(client: httpx.Client, n: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        stats = client.get("/api/status").json()["stats"]
        if stats["processing"] + stats["waiting"] >= n:
            return
        assert time.monotonic() < deadline, "the held requests were not admitted"
        time.sleep(0.05)


def test_every_429_carries_retry_after(faces):
    url, switch = faces
    switch.hold.clear()
    held: list[threading.Thread] = []
    try:
        with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
            held.append(_hold_one(url, KEY))
            _wait_busy(client, 1)
            refusals = {
                # This key's share (1) is taken: every way in says so, with Retry-After.
                "seed": client.post("/api/process", files={"audio": (JFK.name, b"x")}),
                "v1": client.post("/v1/audio/transcriptions", files=form_file()),
                "chat": client.post("/v1/chat/completions", json=chat_body()),
            }
            held.append(_hold_one(url, OTHER))
            _wait_busy(client, 2)
            other = {"Authorization": f"Bearer {OTHER}"}
            # The whole service (2) is busy.
            refusals["global"] = client.post(
                "/api/audio/info", files={"audio": (JFK.name, b"x")}, headers=other
            )
        for name, r in refusals.items():
            assert r.status_code == 429, (name, r.text)
            assert r.headers.get("retry-after", "").isdigit(), (name, r.headers)
            assert r.json()["error"]["type"] == "rate_limit_error"
    finally:
        switch.hold.set()
        for thread in held:
            thread.join(30)


def test_the_task_quota_429_carries_retry_after(faces):
    url, switch = faces
    switch.hold.clear()
    try:
        with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
            first = client.post("/api/task", files={"audio": (JFK.name, JFK.read_bytes())})
            assert first.status_code == 202, first.text
            r = client.post("/api/task", files={"audio": (JFK.name, JFK.read_bytes())})
            assert r.status_code == 429, r.text
            assert r.json()["error"]["code"] == "task_quota_exceeded"
            assert r.headers.get("retry-after", "").isdigit()
            client.delete(f"/api/task/{first.json()['task_id']}")
    finally:
        switch.hold.set()


# -- a failure after the stream began is an event, whatever it is ---------------------------


@pytest.mark.parametrize("failure", [RuntimeError("boom"), KeyError("k"), ZeroDivisionError()])
def test_an_unexpected_error_ends_a_v1_stream_with_an_error_event(faces, failure):
    url, switch = faces
    switch.fail = failure
    try:
        with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
            r = client.post("/v1/audio/transcriptions", files=form_file(), data={"stream": "true"})
    finally:
        switch.fail = None
    assert r.status_code == 200  # the status line left before the failure
    events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]", r.text
    error = json.loads(events[-2])
    assert error["type"] == "error"
    assert error["error"]["type"] == "internal_error"
    assert type(failure).__name__ in error["error"]["message"]


def test_an_unexpected_error_ends_a_seed_stream_with_an_error_event(faces):
    url, switch = faces
    switch.fail = RuntimeError("boom")
    try:
        with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
            r = client.post(
                "/api/process",
                files={"audio": (JFK.name, JFK.read_bytes())},
                data={"stream": "true"},
            )
    finally:
        switch.fail = None
    assert r.status_code == 200
    assert r.text.rstrip().splitlines()[-2] == "event: error", r.text
    body = json.loads(r.text.rstrip().splitlines()[-1][6:])
    assert body["status"] == "error" and body["error"]["message"] == "Internal error: RuntimeError"


def test_the_queue_is_free_after_failures(faces):
    """Failed and refused requests give their place back: the same key is served."""
    url, _ = faces
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
        r = client.post("/api/process", files={"audio": (JFK.name, JFK.read_bytes())})
        assert r.status_code == 200, r.text
        stats = client.get("/api/status").json()["stats"]
        assert stats["processing"] == 0 and stats["waiting"] == 0


def test_the_data_dir_holds_no_upload_after_the_requests(faces, tmp_path_factory):
    url, _ = faces
    uploads = [p for p in Path(tmp_path_factory.getbasetemp()).glob("faces*/uploads/*")]
    assert uploads == [], uploads
