"""Finding 5: webhooks must not reach our own network, and must be signed.

A stranger submits tasks whose ``webhook_url`` points at loopback, private, link-local
(cloud metadata) and other internal addresses, in every spelling; a canary HTTP server on
127.0.0.1 shows that no request ever reaches it. Deliveries that are allowed carry a
signature the receiver verifies with its key's secret.

A receiver the caller runs must not hold a worker either: one dripping its answer a byte
a second, or one whose name takes forever to look up, fails the try at its one deadline;
one sending hundreds of MiB has only its first few KB read."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from stepaudio.api import create_app
from stepaudio.config import Settings
from stepaudio.tasks import outbound
from stepaudio.tasks.async_store import AsyncTaskStore
from stepaudio.tasks.outbound import MAX_ANSWER_BYTES, UnsafeURL, check_url, post_pinned
from stepaudio.tasks.outbox import (
    Outbox,
    WebhookJob,
    WebhookQueue,
    master_secret,
    owner_secret,
)
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip
from tests.tasks.test_store import new_task, shown

A = {"Authorization": "Bearer key-a"}


@pytest.fixture
def canary() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """An internal service on 127.0.0.1 that records every request reaching it."""
    hits: list[dict[str, Any]] = []
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def anything(request: Request, path: str) -> JSONResponse:
        hits.append({"path": path, "headers": dict(request.headers), "body": await request.body()})
        if path == "redirect":
            return RedirectResponse(f"http://127.0.0.1:{request.url.port}/internal", 307)
        return JSONResponse({})

    with serve_in_thread(app) as url:
        yield int(url.rsplit(":", 1)[1]), hits


def internal_urls(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/hook",
        f"http://localhost:{port}/hook",
        f"http://LOCALHOST.:{port}/hook",
        f"http://2130706433:{port}/hook",  # 127.0.0.1 as one number
        f"http://0x7f.1:{port}/hook",  # hex, short form
        f"http://017700000001:{port}/hook",  # octal
        f"http://127.1:{port}/hook",
        f"http://[::1]:{port}/hook",
        f"http://[::ffff:127.0.0.1]:{port}/hook",  # IPv4-mapped IPv6
        f"http://0.0.0.0:{port}/hook",
        f"http://[::]:{port}/hook",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.0.0.1/hook",
        "http://172.16.5.4/hook",
        "http://192.168.1.1/hook",
        "http://100.64.0.1/hook",  # carrier-grade NAT
        "http://[fc00::1]/hook",  # unique local
        "http://[fe80::1]/hook",  # link-local
        "http://224.0.0.1/hook",  # multicast
        "http://240.0.0.1/hook",  # reserved
        "http://[::ffff:169.254.169.254]/hook",
        "http://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
        "https://user:pw@example.com/hook",  # credentials
        "ftp://example.com/hook",
        "http://no-such-host.invalid/hook",
    ]


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    """A gateway with no worker, on a scripted engine (the subject is the submission)."""
    settings = Settings(_env_file=None, data_dir=tmp_path, api_keys=["key-a"], task_workers=0)
    with serve_in_thread(create_app(settings, engine=ScriptedEngine())) as url:
        yield url


def test_internal_webhook_urls_are_refused_at_submission(gateway: str, canary):
    port, hits = canary
    audio = clip("en/sense_and_sensibility_0880.wav").read_bytes()
    with httpx.Client(base_url=gateway, timeout=30, headers=A) as api:
        for url in internal_urls(port):
            r = api.post(
                "/api/task",
                files={"audio": ("a.wav", audio)},
                data={"mode": "asr", "webhook_url": url},
            )
            assert r.status_code == 400, (url, r.text)
            error = r.json()["error"]
            assert error["param"] == "webhook_url", (url, error)
        assert api.get("/api/tasks").json()["count"] == 0  # nothing queued
    assert hits == []


def test_an_allowed_host_is_accepted(canary):
    port, _ = canary
    target = check_url(f"http://127.0.0.1:{port}/hook", ["127.0.0.1"])
    assert target.address == "127.0.0.1" and target.pinned_url.endswith(f":{port}/hook")
    with pytest.raises(UnsafeURL):
        check_url(f"http://127.0.0.1:{port}/hook", ["10.0.0.1"])
    # A public name is pinned to the address checked: the connection goes there, with the
    # name kept for Host (and SNI/certificates over https).
    public = check_url("https://93.184.215.14:8443/x?y=1", [])
    assert public.pinned_url == "https://93.184.215.14:8443/x?y=1"
    assert public.host_header == "93.184.215.14:8443"


def _finished_task(store, tmp_path: Path, url: str) -> str:
    task_id = new_task(store, tmp_path, owner="key-owner", webhook_url=url)
    store.complete(store.claim("w"), {"answer": "done"})
    return task_id


def test_delivery_checks_the_address_again_and_reports_no_details(
    make_store, tmp_path: Path, canary
):
    """A task stored while its host was allowed (or resolved publicly) is not delivered
    once it no longer is: the check runs again at delivery time."""
    port, hits = canary
    store = make_store(webhook_retries=0)
    task_id = _finished_task(store, tmp_path, f"http://127.0.0.1:{port}/hook")
    queue = WebhookQueue(store)
    [job] = queue.claim(1)
    ok = asyncio.run(Outbox(AsyncTaskStore(store), store.settings).try_once(job))
    assert not ok and hits == []
    queue.record(job, ok)
    # The view says only that it failed: no error text, status code or timing per try.
    assert shown(store.get(task_id))["webhook"] == {"url": job.url, "state": "failed"}


def test_redirects_are_not_followed(make_store, tmp_path: Path, canary):
    port, hits = canary
    store = make_store(webhook_allow_hosts=["127.0.0.1"])
    _finished_task(store, tmp_path, f"http://127.0.0.1:{port}/redirect")
    [job] = WebhookQueue(store).claim(1)
    assert not asyncio.run(Outbox(AsyncTaskStore(store), store.settings).try_once(job))
    assert [h["path"] for h in hits] == ["redirect"]  # never /internal


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance_s: int = 300) -> bool:
    """What the README tells a receiver to do."""
    timestamp = headers["x-stepaudio-timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    given = headers["x-stepaudio-signature"].removeprefix("sha256=")
    fresh = abs(time.time() - int(timestamp)) <= tolerance_s
    return fresh and hmac.compare_digest(expected.hexdigest(), given)


def test_deliveries_are_signed_per_key(make_store, tmp_path: Path, canary):
    port, hits = canary
    store = make_store(webhook_allow_hosts=["127.0.0.1"])
    task_id = _finished_task(store, tmp_path, f"http://127.0.0.1:{port}/hook")
    [job] = WebhookQueue(store).claim(1)
    assert asyncio.run(Outbox(AsyncTaskStore(store), store.settings).try_once(job))
    [hit] = hits
    headers, body = hit["headers"], hit["body"]
    secret = owner_secret(master_secret(store), "key-owner")
    assert verify(secret, headers, body)
    assert not verify(owner_secret(master_secret(store), "another-key"), headers, body)
    assert not verify(secret, headers, body.replace(b"done", b"DONE"))
    payload = json.loads(body)
    assert payload["task_id"] == task_id and payload["event"] == "task.completed"
    assert headers["x-stepaudio-event-id"] == payload["event_id"]
    assert headers["host"] == f"127.0.0.1:{port}"
    # The generated master secret is kept in the database: another process (a fresh
    # store on the same database) signs with the same one.
    assert master_secret(make_store()) == master_secret(store)


def test_the_secret_route_gives_each_key_its_own(tmp_path: Path):
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        api_keys=["key-a", "key-b"],
        task_workers=0,
        webhook_secret="operator-master",
    )
    with (
        serve_in_thread(create_app(settings, engine=ScriptedEngine())) as url,
        httpx.Client(base_url=url, timeout=30) as api,
    ):
        a = api.get("/api/webhook/secret", headers=A)
        b = api.get("/api/webhook/secret", headers={"X-API-Key": "key-b"})
        assert a.status_code == b.status_code == 200
        assert a.json()["secret"].startswith("whsec_") and a.json() != b.json()
        assert api.get("/api/webhook/secret").status_code == 401


# -- receivers that hold the delivery ---------------------------------------------------

Reply = Callable[[socket.socket, threading.Event], None]
"""Writes an answer on an accepted connection (its request read); stops when the event is
set (the test is over)."""


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("closed before its request")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"content-length:\s*(\d+)", head, re.IGNORECASE)
    while length and len(body) < int(length.group(1)):
        body += conn.recv(65536)


@contextmanager
def raw_receiver(reply: Reply) -> Iterator[int]:
    """A receiver on 127.0.0.1 speaking HTTP by hand (its port), so that it can answer as
    slowly or as much as an attacker would."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    threads: list[threading.Thread] = []

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            try:
                _read_request(conn)
                reply(conn, stop)
            except OSError:
                pass  # the client closed the connection: what the tests want

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=serve, args=(conn,), daemon=True)
            thread.start()
            threads.append(thread)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        acceptor.join(5)
        listener.close()
        for thread in threads:
            thread.join(5)


ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"


def dripping(start: int) -> Reply:
    """Sends ``start`` bytes of a 200 answer at once, then the rest a byte a second."""

    def reply(conn: socket.socket, stop: threading.Event) -> None:
        answer = ANSWER + b"x" * 100
        conn.sendall(answer[:start])
        for i in range(start, len(answer)):
            if stop.wait(1):
                return
            conn.sendall(answer[i : i + 1])

    return reply


def flooding(status: int, total: int, sent: list[int], done: threading.Event) -> Reply:
    """Answers ``status`` with a ``total``-byte body, counting in ``sent`` what the socket
    took before the client hung up."""

    def reply(conn: socket.socket, stop: threading.Event) -> None:
        try:
            conn.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n" % (status, total))
            chunk = b"x" * (1 << 20)
            while sent[0] < total and not stop.is_set():
                conn.sendall(chunk)
                sent[0] += len(chunk)
        finally:
            done.set()

    return reply


def _job(make_store, tmp_path: Path, url: str, **settings: Any) -> tuple[Outbox, WebhookJob]:
    store = make_store(webhook_allow_hosts=["127.0.0.1", "hook.slow-dns.test"], **settings)
    _finished_task(store, tmp_path, url)
    [job] = WebhookQueue(store).claim(1)
    return Outbox(AsyncTaskStore(store), store.settings), job


def _timed_try(outbox: Outbox, job: WebhookJob) -> tuple[bool, float]:
    """One try, and how long it took (bounded, so that a try that hangs fails the test)."""
    started = time.monotonic()
    ok = asyncio.run(asyncio.wait_for(outbox.try_once(job), 15))
    return ok, time.monotonic() - started


@pytest.mark.parametrize("start", [0, len(ANSWER)], ids=["status-line", "body"])
def test_a_dripping_receiver_fails_the_try_at_its_deadline(
    make_store, tmp_path: Path, caplog, start: int
):
    """A byte a second resets any per-read timeout; the deadline of the whole try does
    not move (2 s here), and the try is a failed one, logged."""
    caplog.set_level(logging.INFO, logger="stepaudio.tasks.outbox")
    with raw_receiver(dripping(start)) as port:
        outbox, job = _job(
            make_store, tmp_path, f"http://127.0.0.1:{port}/hook", webhook_timeout_s=2
        )
        ok, took = _timed_try(outbox, job)
    assert not ok
    assert 1.9 < took < 4, took
    assert "not done within the 2 s deadline" in caplog.text
    # Recorded as an ordinary failed try: due again after its backoff, never held longer.
    assert outbox.queue.record(job, ok) == "pending"


def test_a_hanging_lookup_fails_the_try_at_its_deadline(
    make_store, tmp_path: Path, caplog, monkeypatch
):
    """The deadline covers the address check too: a name whose lookup hangs (a DNS
    server the caller runs can answer that slowly) does not hold the try."""
    caplog.set_level(logging.INFO, logger="stepaudio.tasks.outbox")
    released = threading.Event()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hook.slow-dns.test":
            released.wait(30)
            raise socket.gaierror("too late")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(outbound.socket, "getaddrinfo", getaddrinfo)
    try:
        outbox, job = _job(make_store, tmp_path, "http://127.0.0.1:9/hook", webhook_timeout_s=1)
        job = WebhookJob(**{**job.__dict__, "url": "http://hook.slow-dns.test/hook"})
        ok, took = _timed_try(outbox, job)
    finally:
        released.set()
    assert not ok
    assert 0.9 < took < 3, took
    assert "not done within the 1 s deadline" in caplog.text


def _peak_rss_while(run: Callable[[], Any]) -> tuple[Any, int]:
    """``run()``'s result, and how far above its starting RSS this process went meanwhile."""
    process = psutil.Process()
    base = peak = process.memory_info().rss
    running = True

    def sample() -> None:
        nonlocal peak
        while running:
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = run()
    finally:
        running = False
        sampler.join()
    return result, max(peak, process.memory_info().rss) - base


MiB = 1 << 20


def test_a_huge_answer_is_not_read(make_store, tmp_path: Path):
    """A 200 MiB answer: the try reads its status and first few KB and hangs up, so the
    receiver gets only what the sockets' buffers take, and our memory barely moves. A 2xx
    with a huge body is still a delivery."""
    sent, done = [0], threading.Event()
    with raw_receiver(flooding(200, 200 * MiB, sent, done)) as port:
        outbox, job = _job(
            make_store, tmp_path, f"http://127.0.0.1:{port}/hook", webhook_timeout_s=10
        )
        (ok, took), grew = _peak_rss_while(lambda: _timed_try(outbox, job))
        assert done.wait(5), "the receiver is still sending: the client did not hang up"
    assert ok
    assert sent[0] < 50 * MiB, f"{sent[0] / MiB:.0f} MiB sent"
    assert grew < 50 * MiB, f"RSS grew {grew / MiB:.0f} MiB"
    assert took < 5, took


def test_the_answer_read_is_its_status_and_head():
    """``post_pinned`` gives the status and at most ``MAX_ANSWER_BYTES`` of the body."""
    sent, done = [0], threading.Event()
    with raw_receiver(flooding(500, 64 * MiB, sent, done)) as port:
        target = check_url(f"http://127.0.0.1:{port}/hook", ["127.0.0.1"])
        answer = asyncio.run(post_pinned(target, b"{}", {}, 5))
        assert done.wait(5)
    assert answer.status_code == 500 and not answer.is_success
    assert answer.head == b"x" * MAX_ANSWER_BYTES
    assert sent[0] < 32 * MiB


@pytest.mark.parametrize("timeout_s", [0.5, 10, 3600])
def test_a_claim_outlasts_the_deadline_of_its_try(make_store, timeout_s: float):
    """A try still under way is never claimed again: its claim lasts longer than all the
    try may take."""
    queue = WebhookQueue(make_store(webhook_timeout_s=timeout_s))
    assert queue.deadline_s == timeout_s
    assert queue.hold_s > queue.deadline_s
