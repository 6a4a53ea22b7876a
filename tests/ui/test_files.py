"""Gradio's routes read no file of the machine (finding 1 of the security review).

A stranger names a server file in a ``FileData`` (``/proc/self/environ``: the process
environment with the API keys; the task database) in a call to one of the page's
functions. Before the fix Gradio copied it into its cache and ``file=`` served the copy;
now the call fails, nothing is copied, and ``file=`` serves nothing outside the page's
own two folders. With keys set, a stranger is refused before any of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import httpx
import pytest

from stepaudio.api import create_app
from stepaudio.config import Settings
from stepaudio.testing.server import serve_in_thread
from tests.ui.conftest import KEY, Keyed

CALL = "/ui/gradio_api/call/describe"


def file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": "talk.wav"}


def call_describe(client: httpx.Client, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """Gradio's public call API: POST the inputs, then read the event's stream."""
    r = client.post(CALL, json={"data": [file_data(path), "s2t", 0, "en"]}, headers=headers)
    if r.status_code != 200:
        return r.status_code, r.text
    event = r.json()["event_id"]
    stream = client.get(f"{CALL}/{event}", headers=headers)
    return stream.status_code, stream.text


def join_queue(client: httpx.Client, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """The route the page itself uses: join the queue, then read the session's stream."""
    config = client.get("/ui/config", headers=headers)
    if config.status_code != 200:
        return config.status_code, config.text
    deps = config.json()["dependencies"]
    fn_index = next(d["id"] for d in deps if d.get("api_name") == "describe")
    body = {
        "data": [file_data(path), "s2t", 0, "en"],
        "fn_index": fn_index,
        "trigger_id": None,
        "session_hash": "stranger01",
        "event_data": None,
    }
    r = client.post("/ui/gradio_api/queue/join", json=body, headers=headers)
    if r.status_code != 200:
        return r.status_code, r.text
    stream = client.get(
        "/ui/gradio_api/queue/data", params={"session_hash": "stranger01"}, headers=headers
    )
    return stream.status_code, stream.text


def cached_copies(roots: list[Path], name: str) -> list[Path]:
    """Files called ``name`` anywhere under the caches (where Gradio would put a copy)."""
    return [p for root in roots if root.is_dir() for p in root.rglob(name) if p.is_file()]


def caches(data_dir: Path) -> list[Path]:
    # Ours, and Gradio's process-wide default, in case a copy went there.
    return [data_dir / "ui-cache", Path(os.environ.get("GRADIO_TEMP_DIR") or "/tmp/gradio")]


def gradio_cache_path(cache: Path, source: Path) -> Path:
    """Where Gradio's ``save_file_to_cache`` puts a copy: <cache>/<sha256 of it>/<name>."""
    digest = hashlib.sha256()
    with source.open("rb") as f:
        while chunk := f.read(1 << 16):
            digest.update(chunk)
    return cache / digest.hexdigest() / source.name


def assert_not_read(client: httpx.Client, target: Path, data_dir: Path, said: str) -> None:
    """Nothing of ``target`` was copied, said, or can be fetched through ``file=``."""
    assert cached_copies(caches(data_dir), target.name) == [], "the file was copied"
    if target.name == "environ":
        # Values only this process's environment holds must not come back.
        for value in ("STEPAUDIO", "PATH="):
            assert value not in said
    for path in (target, gradio_cache_path(data_dir / "ui-cache", target)):
        r = client.get(f"/ui/gradio_api/file={path}")
        assert r.status_code == 404, (path, r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("route", [call_describe, join_queue], ids=["call", "queue"])
@pytest.mark.parametrize("target", ["/proc/self/environ", "tasks.db"])
def test_no_key_needed_server_reads_no_file(
    server: str, data_dir: Path, target: str, route
) -> None:
    """No keys configured: a stranger names a server file; the page's call fails."""
    path = Path(target) if target.startswith("/") else data_dir / target
    assert path.exists()
    with httpx.Client(base_url=server, timeout=120) as client:
        status, said = route(client, str(path), {})
        assert status == 200  # the event stream itself; the event inside it failed
        assert "process_completed" in said or "event: error" in said
        assert '"success": true' not in said.replace('"success":true', '"success": true')
        assert "ui-cache" not in said and "/tmp/gradio" not in said
        assert_not_read(client, path, data_dir, said)


@pytest.mark.parametrize("target", ["/proc/self/environ", "tasks.db"])
def test_keyed_server_refuses_strangers_and_key_holders_alike(keyed: Keyed, target: str) -> None:
    """With keys: no key → 401 before anything; a valid key reads no server file either."""
    path = Path(target) if target.startswith("/") else keyed.data_dir / target
    with httpx.Client(base_url=keyed.url, timeout=120) as client:
        status, said = call_describe(client, str(path), {})
        assert status == 401
        assert json.loads(said)["error"]["code"] == "invalid_api_key"
        status, said = call_describe(client, str(path), {"X-API-Key": KEY})
        assert status == 200 and "event: error" in said
        assert cached_copies(caches(keyed.data_dir), path.name) == []
        for fetched in (path, gradio_cache_path(keyed.data_dir / "ui-cache", path)):
            r = client.get(f"/ui/gradio_api/file={fetched}", headers={"X-API-Key": KEY})
            assert r.status_code == 404


def test_file_route_serves_nothing_outside_the_pages_folders(server: str, data_dir: Path):
    outside = Path(tempfile.gettempdir()) / "stepaudio-ui-outside.txt"
    outside.write_text("not for the page")
    try:
        with httpx.Client(base_url=server, timeout=30) as client:
            for path in (
                str(outside),  # /tmp: Gradio's own rule allows the system's temp folder
                "/etc/passwd",
                "README.md",  # relative: the working directory, also allowed by Gradio
                f"{data_dir}/ui-downloads/../tasks.db",
                f"{data_dir}/ui-cache/../uploads",
            ):
                r = client.get(f"/ui/gradio_api/file={path}")
                assert r.status_code == 404, path
                assert "not for the page" not in r.text
            # Gradio's fetch-any-URL route is closed too (a server-side request).
            r = client.get(f"/ui/gradio_api/proxy={server}/health")
            assert r.status_code == 404
    finally:
        outside.unlink()


def test_upload_without_key_is_refused_and_stores_nothing(keyed: Keyed):
    cache = keyed.data_dir / "ui-cache"
    before = sorted(p for p in cache.rglob("*"))
    with httpx.Client(base_url=keyed.url, timeout=30) as client:
        r = client.post(
            "/ui/gradio_api/upload",
            files={"files": ("talk.wav", b"RIFF" + b"\0" * 4096, "audio/wav")},
        )
        assert r.status_code == 401
        assert r.json()["error"]["type"] == "authentication_error"
    assert sorted(p for p in cache.rglob("*")) == before


def test_upload_with_key_lands_in_the_pages_cache_and_is_served(keyed: Keyed):
    """The page's own way stays open: an upload is stored in data_dir/ui-cache and served."""
    payload = b"RIFF" + os.urandom(2048)
    headers = {"X-API-Key": KEY}
    with httpx.Client(base_url=keyed.url, timeout=30, headers=headers) as client:
        r = client.post(
            "/ui/gradio_api/upload", files={"files": ("talk.wav", payload, "audio/wav")}
        )
        assert r.status_code == 200, r.text
        (stored,) = r.json()
        assert Path(stored).is_relative_to(keyed.data_dir / "ui-cache")
        got = client.get(f"/ui/gradio_api/file={stored}")
        assert got.status_code == 200 and got.content == payload


def test_cache_is_emptied_when_the_app_starts_and_stops(tmp_path: Path, embedded):
    """Nothing a previous run (or a crash) left in the cache is served; nothing stays."""
    settings = Settings(data_dir=tmp_path, _env_file=None)
    stale = tmp_path / "ui-cache" / ("0" * 64) / "left-over.wav"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"from an earlier run")
    with serve_in_thread(create_app(settings, engine=embedded)) as url:
        assert not stale.exists()
        with httpx.Client(base_url=url, timeout=30) as client:
            r = client.post(
                "/ui/gradio_api/upload", files={"files": ("a.wav", b"RIFF" + b"1" * 64)}
            )
            assert r.status_code == 200
            (stored,) = r.json()
            assert Path(stored).is_file()
            assert client.get(f"/ui/gradio_api/file={stale}").status_code == 404
    assert [p for p in (tmp_path / "ui-cache").rglob("*") if p.is_file()] == []
