"""The one table from backends' HTTP failures to our errors (``engines/http.py``) and the
retry policy the error classes carry, through ``httpx.MockTransport``: no server, no
model, milliseconds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from stepaudio.config import BackendConfig, RetryPolicy, Settings
from stepaudio.engines.base import TextJob
from stepaudio.engines.cascade import CascadeEngine
from stepaudio.engines.http import map_errors, raise_for_status
from stepaudio.engines.pool import BackendPool
from stepaudio.engines.stepaudio.engine import StepAudioEngine
from stepaudio.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ContextLengthExceeded,
    StepAudioError,
)
from stepaudio.params import ProcessParams

URL = "http://backend.test"
CONTEXT = "This model's maximum context length is 4096 tokens. However, you requested 5000."

# status, body, class, code, retryable, permanent
STATUSES = [
    (400, {"message": CONTEXT}, ContextLengthExceeded, "context_length_exceeded", False, True),
    (400, {"error": {"message": "bad field"}}, BackendError, "http_400", False, True),
    (401, {"detail": "Unauthorized"}, BackendError, "http_401", False, True),
    (403, "Forbidden", BackendError, "http_403", False, True),
    (404, {"detail": "Not Found"}, BackendError, "http_404", False, True),
    (408, "Request Timeout", BackendTimeout, "http_408", True, False),
    (413, "Payload Too Large", BackendError, "http_413", False, True),
    (422, {"detail": [{"msg": "field required"}]}, BackendError, "http_422", False, True),
    (429, {"error": {"message": "slow down"}}, BackendUnavailable, "http_429", True, False),
    (500, {"message": "boom"}, BackendError, "http_500", True, False),
    (502, "Bad Gateway", BackendUnavailable, "no_healthy_backend", True, False),
    (503, "Service Unavailable", BackendUnavailable, "no_healthy_backend", True, False),
    (504, "Gateway Timeout", BackendUnavailable, "no_healthy_backend", True, False),
]


def answer(status: int, body: object) -> httpx.Response:
    if isinstance(body, str):
        return httpx.Response(status, text=body)
    return httpx.Response(status, json=body)


def raised(handler: Callable[[httpx.Request], httpx.Response]) -> StepAudioError:
    """What a plain call through ``map_errors`` + ``raise_for_status`` raises."""
    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
        pytest.raises(StepAudioError) as err,
        map_errors(URL, timeout=3),
    ):
        resp = client.get(f"{URL}/v1/models")
        raise_for_status(URL, resp)
        resp.json()
    return err.value


@pytest.mark.parametrize(("status", "body", "cls", "code", "retryable", "permanent"), STATUSES)
def test_status_table(status, body, cls, code, retryable, permanent) -> None:
    error = raised(lambda request: answer(status, body))
    assert type(error) is cls and error.code == code
    assert (error.retryable, error.permanent) == (retryable, permanent)
    assert f"answered {status}" in error.message


def test_error_bodies_are_quoted() -> None:
    assert "bad field" in raised(lambda r: answer(400, {"error": {"message": "bad field"}})).message
    assert "Not Found" in raised(lambda r: answer(404, {"detail": "Not Found"})).message
    assert "plain text" in raised(lambda r: answer(500, "plain text")).message
    assert "API key" in raised(lambda r: answer(401, {})).message


def failing(exc: type[httpx.HTTPError]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("simulated", request=request)

    return handler


@pytest.mark.parametrize(
    ("exc", "cls", "code"),
    [
        (httpx.ConnectError, BackendUnavailable, "no_healthy_backend"),
        (httpx.ConnectTimeout, BackendTimeout, "backend_timeout"),
        (httpx.ReadTimeout, BackendTimeout, "backend_timeout"),
        (httpx.PoolTimeout, BackendTimeout, "backend_timeout"),
        (httpx.RemoteProtocolError, BackendError, "stream_cut"),
        (httpx.ReadError, BackendError, "stream_cut"),
        (httpx.WriteError, BackendError, "stream_cut"),
        (httpx.UnsupportedProtocol, BackendError, "backend_error"),
    ],
)
def test_transport_table(exc, cls, code) -> None:
    error = raised(failing(exc))
    assert type(error) is cls and error.code == code
    assert error.retryable and not error.permanent
    assert isinstance(error.__cause__, exc)


def test_malformed_json_and_deadlines() -> None:
    error = raised(lambda r: httpx.Response(200, content=b"{not json"))
    assert type(error) is BackendError and error.retryable
    with pytest.raises(BackendTimeout, match="within 3 s"), map_errors(URL, timeout=3):
        raise TimeoutError
    # Our own errors pass through untouched.
    mine = ContextLengthExceeded("mine")
    with pytest.raises(ContextLengthExceeded) as err, map_errors(URL):
        raise mine
    assert err.value is mine


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_map_errors_around_awaits(anyio_backend: str) -> None:
    with pytest.raises(BackendTimeout, match="within 0 s"), map_errors(URL, timeout=0.01):
        async with asyncio.timeout(0.01):
            await asyncio.sleep(5)


def every_error_class(root: type[StepAudioError] = StepAudioError):
    yield root
    for sub in root.__subclasses__():
        yield from every_error_class(sub)


def test_policy_is_consistent() -> None:
    for cls in every_error_class():
        error = cls("x")
        assert not (error.retryable and error.permanent), cls
    # What the task workers used to get wrong: a request over max_model_len is not retried.
    assert ContextLengthExceeded("x").permanent
    assert BackendError("x", code="http_401").permanent
    assert BackendError("x", code="stream_cut").retryable


# -- engines over a MockTransport ----------------------------------------------------


class Backend:
    """A MockTransport vLLM: healthy, serving the model, answering chat with ``status``."""

    def __init__(self, status: int, body: object = None):
        self.status = status
        self.body = body if body is not None else {"message": "no"}
        self.chats = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/health":
            return httpx.Response(200)
        if path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "m", "max_model_len": 8192}]})
        self.chats += 1
        return answer(self.status, self.body)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


def text_job() -> TextJob:
    return TextJob("system", "prompt", ProcessParams(), max_tokens=64)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_401_is_permanent_from_every_engine(anyio_backend: str, settings: Settings):
    backend = Backend(401)
    async with backend.client() as client:
        engine = StepAudioEngine(BackendConfig(url=URL, model="m"), settings, client=client)
        with pytest.raises(BackendError) as err:
            await engine.complete(text_job())
        assert err.value.code == "http_401" and err.value.permanent

        cascade_settings = Settings(
            data_dir=settings.data_dir, transcription_url=URL, chat_url=f"{URL}/v1", _env_file=None
        )
        cascade = CascadeEngine(cascade_settings, client=client)
        with pytest.raises(BackendError) as err:
            await cascade.complete(text_job())
        assert err.value.code == "http_401" and err.value.permanent
    assert backend.chats == 2


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize(
    ("status", "body", "calls"),
    [
        (401, {"message": "bad key"}, 1),
        (400, {"message": CONTEXT}, 1),
        (404, {"message": "no such model"}, 1),
        (500, {"message": "boom"}, 3),
    ],
)
async def test_pool_retries_only_what_may_succeed(
    anyio_backend: str, settings: Settings, status: int, body: object, calls: int
) -> None:
    backends = [Backend(status, body), Backend(status, body)]
    clients = [b.client() for b in backends]
    engines = [
        StepAudioEngine(BackendConfig(url=f"http://b{i}.test", model="m"), settings, client=c)
        for i, c in enumerate(clients)
    ]
    pool = BackendPool(
        engines, settings, health_interval_s=60, retry=RetryPolicy(attempts=3, base_s=0)
    )
    try:
        with pytest.raises(BackendError):
            await pool.complete(text_job())
    finally:
        await pool.aclose()
        for c in clients:
            await c.aclose()
    assert sum(b.chats for b in backends) == calls
    # A backend's 4xx says nothing about its health; it stays in rotation.
    assert all(e.state.healthy for e in engines)


def test_stream_error_event_is_a_backend_error() -> None:
    """An SSE error event mid-stream is the backend's failure (retryable), not an answer."""
    events = [{"error": {"message": "engine dead"}}]
    stream = "".join(f"data: {json.dumps(e)}\n\n" for e in events)

    async def go() -> None:
        client = httpx.AsyncClient(
            transport=httpx.MockTransport(lambda r: httpx.Response(200, text=stream))
        )
        engine = StepAudioEngine(BackendConfig(url=URL), Settings(_env_file=None), client=client)
        try:
            await engine.complete(text_job())
        finally:
            await client.aclose()

    with pytest.raises(BackendError, match="mid-stream") as err:
        asyncio.run(go())
    assert err.value.retryable
