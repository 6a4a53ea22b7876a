"""Body limits that no spelling gets round, public routes that parse nothing large, and
one per-key share for every way in (second review, findings 3, 4 and 7).

- The JSON limit applied only to a lower-case ``application/json``: ``Application/JSON``,
  ``+json`` types or no Content-Type at all were parsed whole (300 MiB: +1.24 GB RSS).
  Now the limit follows the route and the media type: only uploads to upload routes get
  the upload limit.
- ``POST /login`` is public and its multipart form was parsed (file parts spooled to
  /tmp) before the handler answered 401. Now public routes take 16 KiB at most.
- The page's inline runs skipped the per-key share of the request limit.

Real server on loopback, the scripted engine (the model is not the subject); bodies go
out with a declared length and chunked, so the count on arrival is tested too.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
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

KEY, OTHER = "limits-key", "limits-other"
MIB = 1 << 20


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ScriptedEngine]]:
    engine = ScriptedEngine(delay_s=2.0)
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("limits"),
        api_keys=[KEY, OTHER],
        max_json_mb=1,
        max_upload_mb=8,
        max_pending_requests_per_key=1,
        _env_file=None,
    )
    with serve_in_thread(create_app(settings, engine=engine), settings=settings) as url:
        yield url, engine


def raw_post(url: str, path: str, headers: list[str], body: bytes, chunked: bool) -> int:
    """POST ``body`` over a raw socket; the status the server answers with."""
    host, port = url.removeprefix("http://").split(":")
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", *headers]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        try:
            step = 256 << 10
            for i in range(0, len(body), step):
                part = body[i : i + step]
                sock.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-body: the answer is already there
        answer = b""
        while b"\r\n" not in answer:
            got = sock.recv(4096)
            if not got:
                break
            answer += got
    return int(answer.split()[1])


SPELLINGS = [
    ["Content-Type: Application/JSON"],
    ["Content-Type: APPLICATION/JSON; charset=utf-8"],
    ["Content-Type: application/vnd.x+json"],
    ["Content-Type: application/json-patch+json"],
    ["Content-Type:   application/json  "],
    ["Content-Type: text/plain"],
    ["Content-Type: application/octet-stream"],
    ["Content-Type: multipart/form-data; boundary=x"],  # not an upload route
    [],  # no Content-Type: FastAPI parses it as JSON
]


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
@pytest.mark.parametrize("spelling", SPELLINGS, ids=lambda s: s[0] if s else "none")
def test_the_json_limit_holds_whatever_the_spelling(service, spelling, chunked):
    url, _ = service
    body = (
        b'{"model": "whisper-1", "messages": [{"role": "user", "content": "'
        + b"a" * (3 * MIB)
        + b'"}]}'
    )
    status = raw_post(url, "/v1/chat/completions", [f"X-API-Key: {KEY}", *spelling], body, chunked)
    assert status == 413


def test_uploads_keep_their_own_limit(service):
    """Only an upload to an upload route may be larger than the JSON limit."""
    url, _ = service
    with httpx.Client(base_url=url, timeout=60, headers={"X-API-Key": KEY}) as client:
        r = client.post(
            "/api/audio/info",
            files={"audio": ("talk.bin", b"\0" * (2 * MIB))},  # over 1 MiB, under 8 MiB
        )
        assert r.status_code == 400  # read whole, then found not to be audio
        big = client.post("/api/audio/info", files={"audio": ("t.bin", b"\0" * (10 * MIB))})
        assert big.status_code == 413


def spooled_files() -> set[Path]:
    return {p for p in Path(tempfile.gettempdir()).iterdir() if p.is_file()}


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
@pytest.mark.parametrize("path", ["/login", "/logout", "/health", "/ready"])
def test_public_routes_parse_nothing_large_without_a_key(service, path, chunked):
    """A 5 MiB multipart part without a key: refused within 16 KiB, nothing spooled."""
    url, _ = service
    before = spooled_files()
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="key"; filename="k.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + os.urandom(5 * MIB)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = [f"Content-Type: multipart/form-data; boundary={boundary}"]
    status = raw_post(url, path, headers, body, chunked)
    # /health and /ready take no POST at all: 405 once the body is not read either.
    assert status == 413 if path in ("/login", "/logout") else status in (405, 413)
    grown = [p for p in spooled_files() - before if p.exists() and p.stat().st_size > 64 << 10]
    assert grown == [], grown


def test_the_login_form_still_works(service):
    url, _ = service
    r = httpx.post(f"{url}/login", data={"key": KEY, "next": "/ui/"}, follow_redirects=False)
    assert r.status_code == 303 and "stepaudio_session=" in r.headers["set-cookie"]


def page_session(url: str, key: str) -> dict[str, str]:
    """The cookie the login gives the page for ``key``."""
    r = httpx.post(f"{url}/login", data={"key": key, "next": "/ui/"}, follow_redirects=False)
    return {"stepaudio_session": r.cookies["stepaudio_session"]}


def page_run(url: str, cookies: dict[str, str], results: list[httpx.Response]) -> None:
    """One run as the page makes it (its session cookie and its header), appended."""
    results.append(
        httpx.post(
            f"{url}/api/process",
            data={"mode": "asr"},
            files={"audio": ("jfk.flac", clip("en/jfk.flac").read_bytes())},
            headers={"X-StepAudio-Page": "1", "Origin": url},
            cookies=cookies,
            timeout=60,
        )
    )


def api_process(url: str, key: str) -> httpx.Response:
    return httpx.post(
        f"{url}/api/process",
        data={"mode": "asr"},
        files={"audio": ("jfk.flac", clip("en/jfk.flac").read_bytes())},
        headers={"X-API-Key": key},
        timeout=60,
    )


def test_the_page_and_the_api_share_one_per_key_share(service):
    """Limit 1 per key: while the page (the key's login session) runs a recording, the
    same key's API request is refused (429), another key's is not; and the other way."""
    url, _ = service
    cookies = page_session(url, KEY)
    said: list[httpx.Response] = []
    running = threading.Thread(target=page_run, args=(url, cookies, said))
    running.start()
    time.sleep(1.0)  # the page's run is in the engine (2 s a window)
    same, other = api_process(url, KEY), api_process(url, OTHER)
    running.join()
    assert same.status_code == 429 and same.json()["error"]["code"] == "key_queue_full"
    assert other.status_code == 200
    assert said[0].status_code == 200 and "heard" in said[0].json()["transcript"]

    # The other way round: an API request in flight, the page's run is refused.
    codes: list[int] = []
    api = threading.Thread(target=lambda: codes.append(api_process(url, KEY).status_code))
    api.start()
    time.sleep(1.0)
    refused: list[httpx.Response] = []
    page_run(url, cookies, refused)
    api.join()
    assert codes == [200]
    assert refused[0].status_code == 429, refused[0].text
    assert refused[0].json()["error"]["code"] == "key_queue_full"
