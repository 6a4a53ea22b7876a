"""The front door, attacked as a stranger would: no key, forged headers, bodies that lie
about their size or never end, connections that never finish their headers.

Raw sockets where the attack is in the bytes on the wire (chunked bodies, Expect,
trickling): an HTTP client library would not send them that way. The service runs on a
scripted engine: the subject is the front door, not the model's words.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stepaudio.api import create_app
from stepaudio.config import Settings
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip

KEY = "sekrit-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server with keys and small limits, so attacks are cheap to mount."""
    data = tmp_path_factory.mktemp("guarded")
    settings = Settings(
        data_dir=data,
        api_keys=[KEY, "clé-ключ"],
        max_upload_mb=1,
        max_json_mb=1,
        body_idle_timeout_s=1.5,
        min_upload_kib_s=64,
        header_timeout_s=1.5,
        max_pending_requests=3,
        max_pending_requests_per_key=2,
        _env_file=None,
    )
    app = create_app(settings, engine=ScriptedEngine())
    with serve_in_thread(app, settings=settings) as url:
        yield url, data


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _head(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _post(path: str, *headers: str) -> bytes:
    """The head of a POST to ``path``, with ``headers`` (the body is the test's business)."""
    return _head([f"POST {path} HTTP/1.1", "Host: x", *headers])


def _read_response(sock: socket.socket, timeout: float = 10) -> tuple[int, dict, bytes]:
    """Read one response (status, headers, body so far) without sending anything more."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def _error(body: bytes) -> dict:
    return json.loads(body)["error"]


def _uploads(data: Path) -> list[Path]:
    return list((data / "uploads").glob("*")) if (data / "uploads").exists() else []


# -- keys before bodies -------------------------------------------------------------------


def test_chunked_upload_without_key_is_refused_before_its_body(guarded):
    url, data = guarded
    with _connect(url) as sock:
        sock.sendall(
            _post(
                "/api/process",
                "Transfer-Encoding: chunked",
                "Content-Type: multipart/form-data; boundary=b",
            )
        )
        # Not one byte of body sent: the answer must come anyway.
        status, headers, body = _read_response(sock)
    assert status == 401
    assert _error(body)["type"] == "authentication_error"
    assert headers.get("www-authenticate") == "Bearer"
    assert _uploads(data) == []


def test_expect_continue_is_answered_without_asking_for_the_body(guarded):
    url, _ = guarded
    for extra, expected in (([], 401), ([f"Authorization: Bearer {KEY}"], 413)):
        with _connect(url) as sock:
            sock.sendall(
                _post(
                    "/api/process",
                    "Expect: 100-continue",
                    f"Content-Length: {50 * 2**20}",
                    "Content-Type: multipart/form-data; boundary=b",
                    *extra,
                )
            )
            status, _, body = _read_response(sock)
        assert status == expected, body  # a final answer, never "100 Continue"
    # A request within the limits is invited to send its body.
    with _connect(url) as sock:
        sock.sendall(
            _post(
                "/api/process",
                "Expect: 100-continue",
                "Content-Length: 100",
                "Content-Type: multipart/form-data; boundary=b",
                f"Authorization: Bearer {KEY}",
            )
        )
        sock.settimeout(10)
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic c2VrcmV0"},
        {"X-API-Key": ""},
        {"Cookie": "stepaudio_key=wrong"},
        {"Cookie": f"stepaudio_key={KEY}"},  # the key itself in a cookie: no more
        {"Cookie": "stepaudio_session=wrong"},
    ],
)
@pytest.mark.parametrize(
    "path",
    ["/api/status", "/api/tasks", "/openapi.json", "/docs", "/ui/", "/metrics", "/v1/models", "/"],
)
def test_every_route_needs_the_key(guarded, path: str, headers: dict):
    url, _ = guarded
    r = httpx.get(url + path, headers=headers)
    assert r.status_code == 401, (path, r.status_code)
    assert r.json()["error"]["code"] == "invalid_api_key"


def test_key_by_header_or_cookie_opens_routes_and_health_stays_open(guarded):
    url, _ = guarded
    login = httpx.post(url + "/login", data={"key": KEY}, follow_redirects=False)
    session = {"Cookie": f"stepaudio_session={login.cookies['stepaudio_session']}"}
    for headers in (AUTH, {"X-API-Key": KEY}, session):
        assert httpx.get(url + "/api/status", headers=headers).status_code == 200
        assert httpx.get(url + "/openapi.json", headers=headers).status_code == 200
    assert httpx.get(url + "/health").status_code == 200
    assert httpx.get(url + "/ready").status_code in (200, 503)


def test_a_browser_is_sent_to_the_login_page(guarded):
    url, _ = guarded
    r = httpx.get(url + "/ui/?task=abc", headers={"Accept": "text/html"})
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fui%2F%3Ftask%3Dabc"
    # API paths stay JSON for browsers too.
    assert httpx.get(url + "/api/tasks", headers={"Accept": "text/html"}).status_code == 401


def test_non_ascii_keys_are_a_401_not_a_crash(guarded):
    url, _ = guarded
    for raw in ("Authorization: Bearer ключ".encode(), b"X-API-Key: \xff\xfe\x00x"):
        with _connect(url) as sock:
            sock.sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\n" + raw + b"\r\n\r\n")
            status, _, _ = _read_response(sock)
        assert status in (400, 401)
    # A configured non-ASCII key works, sent as UTF-8 bytes.
    with _connect(url) as sock:
        sock.sendall(
            b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-API-Key: "
            + "clé-ключ".encode()
            + b"\r\n\r\n"
        )
        status, _, _ = _read_response(sock)
    assert status == 200


# -- sizes counted as they arrive ----------------------------------------------------------


PART = (
    b'--b\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n"
)


def _chunked(sock: socket.socket, total: int, piece: int = 64 * 1024, first: bytes = b"") -> None:
    sent = 0
    try:
        if first:
            sock.sendall(f"{len(first):x}\r\n".encode() + first + b"\r\n")
        while sent < total:
            sock.sendall(f"{piece:x}\r\n".encode() + b"\0" * piece + b"\r\n")
            sent += piece
        sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server stopped listening: that is the point


def test_chunked_upload_over_the_limit_is_cut_and_nothing_is_stored(guarded):
    url, data = guarded
    with _connect(url) as sock:
        sock.sendall(
            _post(
                "/api/process",
                "Transfer-Encoding: chunked",
                "Content-Type: multipart/form-data; boundary=b",
                f"Authorization: Bearer {KEY}",
            )
        )
        _chunked(sock, 8 * 2**20, first=PART)
        status, headers, body = _read_response(sock)
    assert status == 413
    assert _error(body)["code"] == "payload_too_large"
    assert headers.get("connection") == "close"
    assert _uploads(data) == []


def test_chunked_json_over_the_limit_is_not_parsed(guarded):
    url, _ = guarded
    with _connect(url) as sock:
        sock.sendall(
            _post(
                "/v1/chat/completions",
                "Transfer-Encoding: chunked",
                "Content-Type: application/json",
                f"Authorization: Bearer {KEY}",
            )
        )
        _chunked(sock, 4 * 2**20, first=b'{"messages": "')
        status, _, body = _read_response(sock)
    assert status == 413
    assert _error(body)["type"] == "invalid_request_error"


def test_declared_length_over_the_limit_is_refused_at_once(guarded):
    url, _ = guarded
    r = httpx.post(
        url + "/v1/audio/transcriptions",
        headers={**AUTH, "Content-Type": "application/json"},
        content=b"{" + b" " * (2 * 2**20) + b"}",
    )
    assert r.status_code == 413


# -- slow clients ---------------------------------------------------------------------------


def test_a_stalled_body_is_cut_with_408(guarded):
    url, data = guarded
    with _connect(url) as sock:
        sock.sendall(
            _post(
                "/api/process",
                "Content-Length: 500000",
                "Content-Type: multipart/form-data; boundary=b",
                f"Authorization: Bearer {KEY}",
            )
            + b"--b\r\n"
        )
        started = time.monotonic()
        status, _, body = _read_response(sock, timeout=30)
    assert status == 408
    assert _error(body)["code"] == "request_timeout"
    assert time.monotonic() - started < 15
    assert _uploads(data) == []


def test_a_trickling_body_is_cut_with_408(guarded):
    url, _ = guarded
    with _connect(url) as sock:
        sock.sendall(
            _post(
                "/api/process",
                "Content-Length: 500000",
                "Content-Type: multipart/form-data; boundary=b",
                f"Authorization: Bearer {KEY}",
            )
            + PART
        )
        deadline = time.monotonic() + 30
        sock.settimeout(0.5)
        answer = b""
        while time.monotonic() < deadline and not answer:
            try:
                sock.sendall(b"x" * 100)  # 100 bytes every 0.5 s, never idle long
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_headers_that_never_end_lose_the_connection(guarded):
    url, _ = guarded
    with _connect(url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        sock.settimeout(20)
        closed = False
        while time.monotonic() - started < 15:
            try:
                sock.sendall(b"X-Slow: 1\r\n")  # a header line now and then, never the end
                time.sleep(0.3)
            except OSError:
                closed = True
                break
            try:
                sock.settimeout(0.01)
                if sock.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
    assert closed
    assert time.monotonic() - started < 10


# -- admission before upload ---------------------------------------------------------------


def _start_upload(url: str, key: str = KEY) -> socket.socket:
    """A request that holds its slot: headers sent, body still to come."""
    sock = _connect(url)
    sock.sendall(
        _post(
            "/api/process",
            "Content-Length: 400000",
            "Content-Type: multipart/form-data; boundary=b",
            f"Authorization: Bearer {key}",
        )
        + b"--b\r\n"
    )
    return sock


def test_requests_past_the_queue_are_refused_before_their_body(guarded):
    url, _ = guarded
    held = [_start_upload(url), _start_upload(url)]
    try:
        time.sleep(0.3)
        # The per-key share (2) is used: this key's third request waits for nothing.
        with _start_upload(url) as third:
            status, headers, body = _read_response(third)
        assert status == 429
        assert _error(body)["code"] == "key_queue_full"
        assert headers.get("retry-after")
        # Another key still gets the last global slot; past it, everyone gets 429.
        other = _start_upload(url, "clé-ключ".encode().decode("latin-1"))
        time.sleep(0.3)
        with _start_upload(url, "clé-ключ".encode().decode("latin-1")) as fourth:
            status, _, body = _read_response(fourth)
        assert status == 429
        assert _error(body)["code"] == "queue_full"
        other.close()
    finally:
        for sock in held:
            sock.close()
    # Slots come back once the holders are gone.
    time.sleep(2.5)
    with open(clip("en/librispeech-1995-1837-0001.wav"), "rb") as f:
        r = httpx.post(
            url + "/api/audio/info", files={"audio": ("a.wav", f)}, headers=AUTH, timeout=60
        )
    assert r.status_code == 200, r.text


def test_nul_in_a_filename_is_not_a_crash(guarded):
    url, data = guarded
    audio = clip("en/librispeech-1995-1837-0001.wav").read_bytes()
    r = httpx.post(
        url + "/api/audio/info",
        files={"audio": ("../../etc/x\x00.flac", audio)},
        headers=AUTH,
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert _uploads(data) == []


def test_connections_past_the_cap_get_a_json_503(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, max_connections=3, _env_file=None)
    app = create_app(settings, engine=ScriptedEngine())
    with serve_in_thread(app, settings=settings) as url:
        idle = [_connect(url) for _ in range(3)]
        try:
            time.sleep(0.3)
            with _connect(url) as sock:
                sock.sendall(_head(["GET /health HTTP/1.1", "Host: x"]))
                status, headers, body = _read_response(sock)
            assert status == 503
            assert _error(body)["code"] == "too_many_connections"
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.3)
        assert httpx.get(url + "/health").status_code == 200
