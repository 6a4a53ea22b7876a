"""Credentials in a backend's URL (``http://user:pass@host``, for a proxy with Basic auth in
front of vLLM) are sent, never shown: not by the public ``/ready``, not by ``/api/status``
or ``/metrics`` to a key holder, not in an error body, not in the logs.

The service runs for real on loopback, on the backend pool, in front of a small fake vLLM
that demands the Basic auth (so a passing request proves the credentials still go out):
no model is loaded anywhere.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from stepaudio.api import create_app
from stepaudio.config import BackendConfig, Settings
from stepaudio.engines.cascade import CascadeEngine
from stepaudio.engines.http import public_url, split_credentials
from stepaudio.errors import BackendError, scrub_credentials
from stepaudio.testing.server import free_port, serve_in_thread
from tests.helpers import clip

USER, PASSWORD = "user", "s3cret-pass"
KEY = "test-key-secrets"
AUTH = {"Authorization": f"Bearer {KEY}"}
MODEL = "Step-Audio-R1.1"


# -- the split and the scrub -------------------------------------------------------------


@pytest.mark.parametrize(
    "url, clean, credentials",
    [
        ("http://user:s3cret@host:9999", "http://host:9999", ("user", "s3cret")),
        # Percent-encoded userinfo is decoded: the password is "p@ss:w/rd %".
        ("https://me:p%40ss%3Aw%2Frd%20%25@host/v1", "https://host/v1", ("me", "p@ss:w/rd %")),
        ("http://a%20b:x@[::1]:8000/v1", "http://[::1]:8000/v1", ("a b", "x")),
        ("http://[2001:db8::1]:8000", "http://[2001:db8::1]:8000", None),
        ("http://host:9999/v1/chat/completions", "http://host:9999/v1/chat/completions", None),
        ("http://user@host", "http://host", ("user", "")),
        ("http://@host", "http://host", None),
        ("http://user:@host", "http://host", ("user", "")),
        ("http://:tok@host", "http://host", ("", "tok")),
    ],
)
def test_split_credentials(url: str, clean: str, credentials: tuple[str, str] | None) -> None:
    got, auth = split_credentials(url)
    assert got == clean and public_url(url) == clean
    if credentials is None:
        assert auth is None
    else:
        assert auth is not None
        request = next(auth.auth_flow(httpx.Request("GET", clean)))
        expected = base64.b64encode(":".join(credentials).encode()).decode()
        assert request.headers["Authorization"] == f"Basic {expected}"


@pytest.mark.parametrize(
    "text, scrubbed",
    [
        ("http://u:p@h:1 is unreachable", "http://h:1 is unreachable"),
        ("bad request to 'https://u:p@ss@h/v1', retry", "bad request to 'https://h/v1', retry"),
        ("postgresql+psycopg://app:pw@db/tasks failed", "postgresql+psycopg://db/tasks failed"),
        ("see http://h/x?to=a@b.c and mail a@b.c", "see http://h/x?to=a@b.c and mail a@b.c"),
        ("no url here: user:pass@host", "no url here: user:pass@host"),
        ("HTTP://U:P@[::1]:8000/v1", "HTTP://[::1]:8000/v1"),
    ],
)
def test_scrub_credentials(text: str, scrubbed: str) -> None:
    assert scrub_credentials(text) == scrubbed


def test_an_error_never_carries_url_credentials() -> None:
    err = BackendError(f"proxy said: http://{USER}:{PASSWORD}@10.0.0.1:8000 refused")
    for shown in (err.message, str(err), json.dumps(err.to_dict())):
        assert PASSWORD not in shown and f"{USER}:" not in shown
    # Rewritten in place after it was made (as api.uploads does): the wire is still clean.
    err.message = f"again http://{USER}:{PASSWORD}@10.0.0.1"
    assert PASSWORD not in json.dumps(err.to_dict())


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_cascade_sends_credentials_and_shows_none(anyio_backend: str, tmp_path: Path) -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        return httpx.Response(200, json={"data": []})

    settings = Settings(
        data_dir=tmp_path,
        _env_file=None,
        transcription_url=f"http://{USER}:{PASSWORD}@asr.test:8000/v1",
        chat_url="http://chat%20user:p%40ss@[::1]:8001",
    )
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    engine = CascadeEngine(settings, client=client)
    try:
        report = await engine.health()
    finally:
        await client.aclose()
    assert report["transcription"]["url"] == "http://asr.test:8000"
    assert report["chat"]["url"] == "http://[::1]:8001"
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert seen[0] == ("http://asr.test:8000/v1/models", f"Basic {basic}")
    basic = base64.b64encode(b"chat user:p@ss").decode()
    assert seen[1] == ("http://[::1]:8001/v1/models", f"Basic {basic}")
    assert PASSWORD not in json.dumps(report)


# -- the service, for real ---------------------------------------------------------------


@dataclass
class FakeVllm:
    """A vLLM that answers only with ``USER:PASSWORD`` as Basic auth (401 otherwise), and
    whose chat answers can be made to fail with an error that quotes its credentialed
    URL (as a careless proxy might)."""

    port: int = field(default_factory=free_port)
    fail: bool = False
    refused: int = 0
    """Requests that came without the credentials."""
    chats: int = 0

    @property
    def secret_url(self) -> str:
        return f"http://{USER}:{PASSWORD}@127.0.0.1:{self.port}"

    def _authorized(self, request: Request) -> bool:
        expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if request.headers.get("authorization") == f"Basic {expected}":
            return True
        self.refused += 1
        return False

    async def health(self, request: Request) -> Response:
        return Response(status_code=200 if self._authorized(request) else 401)

    async def models(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"detail": "Unauthorized"}, status_code=401)
        return JSONResponse({"data": [{"id": MODEL, "max_model_len": 65536}]})

    async def chat(self, request: Request) -> Response:
        await request.body()
        if not self._authorized(request):
            return JSONResponse({"detail": "Unauthorized"}, status_code=401)
        if self.fail:
            message = f"bad request forwarded to {self.secret_url}/v1/chat/completions"
            return JSONResponse({"object": "error", "message": message}, status_code=400)
        self.chats += 1

        def event(delta: dict[str, str], finish: str | None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return f"data: {json.dumps({'choices': [choice]})}\n\n"

        text = "The speaker asks for service.</think>And so, my fellow Americans."
        chunks = [event({"content": text}, None), event({}, "stop"), "data: [DONE]\n\n"]
        return StreamingResponse(iter(chunks), media_type="text/event-stream")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/health", self.health),
                Route("/v1/models", self.models),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
            ]
        )


@contextmanager
def service(tmp_path: Path, backend_url: str | None) -> Iterator[httpx.Client]:
    """The service with API keys, on one backend (None: the seed's ``VLLM_API_URL``)."""
    backends = [BackendConfig(url=backend_url, max_concurrency=2)] if backend_url else []
    settings = Settings(
        data_dir=tmp_path,
        _env_file=None,
        api_keys=[KEY],
        ui=False,
        backends=backends,
        health_interval_s=0.2,
        backend_retries=2,
    )
    with (
        serve_in_thread(create_app(settings), settings=settings) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        yield client


def assert_clean(text: str) -> None:
    assert PASSWORD not in text and f"{USER}:" not in text, text


def process(client: httpx.Client) -> httpx.Response:
    path = clip("en/jfk.flac")
    with open(path, "rb") as f:
        return client.post(
            "/api/process", files={"audio": (path.name, f)}, data={"mode": "asr"}, headers=AUTH
        )


def test_credentials_are_sent_and_never_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx logs each request's URL at INFO
    fake = FakeVllm()
    with serve_in_thread(fake.app(), port=fake.port), service(tmp_path, fake.secret_url) as c:
        # Ready only if the probes carried the credentials: the fake refuses them otherwise.
        ready = c.get("/ready")
        assert (ready.status_code, ready.json()) == (200, {"ready": True})

        status = c.get("/api/status", headers=AUTH)
        assert status.status_code == 200
        assert_clean(status.text)
        clean = f"http://127.0.0.1:{fake.port}"
        assert status.json()["vllm_url"] == clean
        assert status.json()["engine"]["backends"][0]["url"] == clean

        ok = process(c)
        assert ok.status_code == 200, ok.text
        assert fake.chats >= 1 and fake.refused == 0
        assert_clean(ok.text)

        fake.fail = True
        failed = process(c)
        assert failed.status_code == 502, failed.text
        assert_clean(failed.text)
        assert clean in failed.json()["error"]["message"]  # the URL is shown, bare

        metrics = c.get("/metrics", headers=AUTH)
        assert metrics.status_code == 200
        assert_clean(metrics.text)
    assert f"127.0.0.1:{fake.port}" in caplog.text  # the logs were captured…
    assert_clean(caplog.text)  # …and hold no credentials


def test_seed_url_is_shown_without_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeVllm()
    monkeypatch.setenv("VLLM_API_URL", f"{fake.secret_url}/v1/chat/completions")
    with serve_in_thread(fake.app(), port=fake.port), service(tmp_path, None) as c:
        assert c.get("/ready").json() == {"ready": True}
        status = c.get("/api/status", headers=AUTH)
        assert_clean(status.text)
        # The seed's field keeps the URL as configured, credentials aside.
        assert status.json()["vllm_url"] == f"http://127.0.0.1:{fake.port}/v1/chat/completions"
    assert fake.refused == 0


def test_a_backend_down_is_reported_without_credentials(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()  # nothing listens there
    with service(tmp_path, f"http://{USER}:{PASSWORD}@127.0.0.1:{port}") as c:
        ready = c.get("/ready")
        # Public: ready or not, and nothing about the backends or their errors.
        assert (ready.status_code, ready.json()) == (503, {"ready": False})

        status = c.get("/api/status", headers=AUTH)
        assert_clean(status.text)
        backend = status.json()["engine"]["backends"][0]
        assert backend["url"] == f"http://127.0.0.1:{port}" and not backend["healthy"]
        assert f"http://127.0.0.1:{port} is unreachable" in backend["last_error"]

        down = process(c)
        assert down.status_code == 503, down.text
        assert_clean(down.text)
        assert_clean(c.get("/metrics", headers=AUTH).text)
    assert "/api/process" in caplog.text  # the 503 was logged…
    assert_clean(caplog.text)  # …and no credentials with it
