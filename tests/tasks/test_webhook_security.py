"""Finding 5: webhooks must not reach our own network, and must be signed.

A stranger submits tasks whose ``webhook_url`` points at loopback, private, link-local
(cloud metadata) and other internal addresses, in every spelling; a canary HTTP server on
127.0.0.1 shows that no request ever reaches it. Deliveries that are allowed carry a
signature the receiver verifies with its key's secret."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from stepaudio.api import create_app
from stepaudio.config import Settings
from stepaudio.engines.embedded import EmbeddedEngine
from stepaudio.tasks.async_store import AsyncTaskStore
from stepaudio.tasks.outbound import UnsafeURL, check_url
from stepaudio.tasks.outbox import Outbox, WebhookQueue, master_secret, owner_secret
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
def gateway(tmp_path: Path, embedded: EmbeddedEngine) -> Iterator[str]:
    settings = Settings(_env_file=None, data_dir=tmp_path, api_keys=["key-a"], task_workers=0)
    with serve_in_thread(create_app(settings, engine=embedded)) as url:
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


def test_the_secret_route_gives_each_key_its_own(tmp_path: Path, embedded: EmbeddedEngine):
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        api_keys=["key-a", "key-b"],
        task_workers=0,
        webhook_secret="operator-master",
    )
    with (
        serve_in_thread(create_app(settings, engine=embedded)) as url,
        httpx.Client(base_url=url, timeout=30) as api,
    ):
        a = api.get("/api/webhook/secret", headers=A)
        b = api.get("/api/webhook/secret", headers={"X-API-Key": "key-b"})
        assert a.status_code == b.status_code == 200
        assert a.json()["secret"].startswith("whsec_") and a.json() != b.json()
        assert api.get("/api/webhook/secret").status_code == 401
