"""The routes this service added for the page and the voice library, attacked as a
stranger would: no key, a forged key, a body over the limit (refused from its header,
and counted when it lies), another key's voice. Scripted engine: no model is reached."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from stepaudio.testing.server import serve_scripted

KEY = "guarded-key"
ROUTES = [
    ("GET", "/api/voices"),
    ("POST", "/api/voices"),
    ("POST", "/api/voices/from-task"),
    ("PATCH", "/api/voices/some-id"),
    ("DELETE", "/api/voices/some-id"),
    ("POST", "/api/render?format=srt"),
    ("DELETE", "/api/task/some-id?purge=true"),
]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_scripted(
        tmp_path_factory.mktemp("guarded"), api_keys=[KEY], limits={"max_json_mb": 1}
    ) as (served, _):
        yield served


@pytest.mark.parametrize("method, path", ROUTES)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "forged"},
        {"Authorization": "Bearer forged"},
        {"Cookie": "stepaudio_session=x"},
    ],
    ids=["none", "forged-key", "forged-bearer", "forged-cookie"],
)
def test_no_valid_key_no_entry(url: str, method: str, path: str, headers: dict):
    r = httpx.request(method, f"{url}{path}", headers=headers, json={"name": "x"}, timeout=30)
    assert r.status_code == 401, (method, path, r.text)
    assert r.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize("path", ["/api/voices", "/api/render?format=srt", "/api/voices/from-task"])
def test_a_body_over_the_limit_is_refused_before_it_is_read(url: str, path: str):
    """The headers alone, a 5 MiB body declared and not sent: the answer comes anyway."""
    host, port = url.removeprefix("http://").split(":")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {5 << 20}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode())
        answer = sock.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]


def test_a_body_that_lies_about_its_length_is_cut_where_it_passes_the_limit(url: str):
    def chunks() -> Iterator[bytes]:
        yield b'{"answer": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    r = httpx.post(
        f"{url}/api/render?format=srt",
        headers={"X-API-Key": KEY, "Content-Type": "application/json"},
        content=chunks(),
        timeout=30,
    )
    assert r.status_code == 413, r.text


def test_voices_of_nobody_and_names_that_are_no_names(url: str):
    with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=30) as c:
        assert c.get("/api/voices").json() == {"voices": []}
        assert c.patch("/api/voices/nope", json={"name": "x"}).status_code == 404
        assert c.delete("/api/voices/nope").status_code == 404
        for body in ({"name": ""}, {"name": "a\x00b"}, {"name": "x" * 65}, {"nom": "x"}):
            r = c.patch("/api/voices/nope", json=body)
            assert r.status_code == 400, (body, r.text)  # refused before any lookup
        r = c.post("/api/voices/from-task", json={"task_id": "nope", "speaker": "A", "name": "X"})
        assert r.status_code == 404
        r = c.post(
            "/api/process",
            data={"mode": "asr", "voices": "Nobody"},
            files={"audio": ("a.wav", b"RIFF....", "audio/wav")},
        )
        assert r.status_code == 400 and r.json()["error"]["param"] in ("voices", "audio")
