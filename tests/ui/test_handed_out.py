"""The page takes no file it did not hand out itself (second review, finding 1).

A key holder posted ``{"path": "<any file>", "meta": {"_type": "gradio.FileData"},
"is_stream": true}`` to the page's functions: Gradio skips its move-into-cache step for
``is_stream`` inputs, so the confinement of that step never saw the path, and the handler
transcribed whatever it named; with ``/proc/self/fd/N``, another tenant's upload while it
was being processed. ``describe`` told whether any path existed.

Here the attack is mounted against a real server on loopback (the scripted engine: what
is tested is which audio reaches the engine, not the model), in the reported shape and
its neighbours: ``is_stream`` and not, a ``url``-only FileData, ``/proc/self/fd/N`` of a
file open in the server's process, another visitor's real upload, a path through ``..``
and a symbolic link into the cache. Nothing reaches the engine; the page's own upload
still works.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stepaudio.api import create_app
from stepaudio.config import Settings
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip

ALICE, BOB = "page-key-alice", "page-key-bob"


def file_data(path: str | None, *, is_stream: bool = False, url: str | None = None) -> dict:
    data: dict = {"meta": {"_type": "gradio.FileData"}, "orig_name": "talk.flac"}
    if path is not None:
        data["path"] = path
    if url is not None:
        data["url"] = url
    if is_stream:
        data["is_stream"] = True
    return data


def process_inputs(audio: dict) -> list:
    # audio, mode, question, target, instruction, max_tokens, temperature, thinking,
    # segment, diarize, as task, page language
    return [audio, "asr", "", "English", "", 512, 0.0, False, 0, False, False, "en"]


def describe_inputs(audio: dict) -> list:
    return [audio, "asr", 0, "en"]


def call(client: httpx.Client, name: str, data: list, key: str) -> str:
    """Gradio's call API: post the inputs, then read the event's whole stream."""
    headers = {"X-API-Key": key}
    r = client.post(f"/ui/gradio_api/call/{name}", json={"data": data}, headers=headers)
    assert r.status_code == 200, r.text
    stream = client.get(f"/ui/gradio_api/call/{name}/{r.json()['event_id']}", headers=headers)
    assert stream.status_code == 200
    return stream.text


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, ScriptedEngine]]:
    data = tmp_path_factory.mktemp("handed-out")
    engine = ScriptedEngine()
    settings = Settings(data_dir=data, api_keys=[ALICE, BOB], _env_file=None)
    with serve_in_thread(create_app(settings, engine=engine), settings=settings) as url:
        yield url, data, engine


def upload(client: httpx.Client, key: str, source: Path) -> str:
    r = client.post(
        "/ui/gradio_api/upload",
        files={"files": (source.name, source.read_bytes(), "audio/flac")},
        headers={"X-API-Key": key},
    )
    assert r.status_code == 200, r.text
    (path,) = r.json()
    return path


def test_the_pages_own_upload_is_processed(page):
    url, _, engine = page
    with httpx.Client(base_url=url, timeout=60) as client:
        stored = upload(client, ALICE, clip("en/jfk.flac"))
        said = call(client, "process", process_inputs(file_data(stored)), ALICE)
    assert "heard 11.0" in said, said[-500:]
    assert engine.windows, "the page's own upload must reach the engine"


def secret_recording(tmp_path: Path) -> Path:
    secret = tmp_path / "secret-of-another-tenant.flac"
    secret.write_bytes(clip("en/jfk.flac").read_bytes())
    return secret


@pytest.mark.parametrize("is_stream", [True, False], ids=["is_stream", "plain"])
@pytest.mark.parametrize("name", ["process", "describe"])
def test_a_path_the_page_never_handed_out_is_refused(page, tmp_path, is_stream, name):
    url, data_dir, engine = page
    secret = secret_recording(tmp_path)
    inside = data_dir / "ui-cache" / "planted" / "x.flac"  # in the cache, never handed out
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.write_bytes(secret.read_bytes())
    link = data_dir / "ui-cache" / "link.flac"
    link.unlink(missing_ok=True)
    link.symlink_to(secret)
    with secret.open("rb") as held, httpx.Client(base_url=url, timeout=60) as client:
        fd_path = f"/proc/self/fd/{held.fileno()}"  # the server runs in this process
        assert Path(fd_path).resolve() == secret.resolve()
        before = len(engine.windows)
        for path in (
            str(secret),
            fd_path,
            str(inside),
            str(link),
            f"{data_dir}/ui-cache/../../{secret.relative_to(secret.anchor)}",
        ):
            audio = file_data(path, is_stream=is_stream)
            inputs = process_inputs(audio) if name == "process" else describe_inputs(audio)
            # What the page says, less the attacker's own words echoed back.
            said = call(client, name, inputs, ALICE).replace(path, "").replace("talk.flac", "")
            assert "heard" not in said and "11.0" not in said, (path, said[-400:])
            assert "0:11" not in said and "flac" not in said.lower(), (path, said[-400:])
        assert len(engine.windows) == before, "a file the page never handed out was decoded"


def test_url_only_file_data_is_refused(page):
    url, _, engine = page
    before = len(engine.windows)
    with httpx.Client(base_url=url, timeout=60) as client:
        for stream in (True, False):
            audio = file_data(None, is_stream=stream, url=f"{url}/health")
            said = call(client, "process", process_inputs(audio), ALICE)
            assert "heard" not in said
    assert len(engine.windows) == before


def test_another_visitors_upload_is_refused(page):
    """Bob names the path the page handed to Alice (cache paths are content hashes: any
    visitor who has the same recording can compute it)."""
    url, _, engine = page
    with httpx.Client(base_url=url, timeout=60) as client:
        alices = upload(client, ALICE, clip("en/sense_and_sensibility_0870.wav"))
        before = len(engine.windows)
        for stream in (True, False):
            said = call(client, "process", process_inputs(file_data(alices, is_stream=stream)), BOB)
            assert "heard" not in said
            described = call(client, "describe", describe_inputs(file_data(alices)), BOB)
            assert "wav" not in described.lower()
        assert len(engine.windows) == before
        # Once Bob uploads the same bytes himself, the same path is his too.
        assert upload(client, BOB, clip("en/sense_and_sensibility_0870.wav")) == alices
        said = call(client, "process", process_inputs(file_data(alices)), BOB)
        assert "heard" in said


def test_describe_does_not_say_whether_a_path_exists(page, tmp_path):
    url, _, _ = page
    existing = secret_recording(tmp_path)
    missing = tmp_path / "no-such-file.flac"
    with httpx.Client(base_url=url, timeout=60) as client:
        answers = [
            call(client, "describe", describe_inputs(file_data(str(p), is_stream=True)), ALICE)
            for p in (existing, missing)
        ]
    strip = [a.replace(str(existing), "").replace(str(missing), "") for a in answers]
    assert strip[0] == strip[1]


@pytest.mark.parametrize(
    "route", ["/ui/gradio_api/process_recording", "/ui/gradio_api/stream/x/playlist.m3u8"]
)
def test_gradio_routes_the_page_does_not_use_are_closed(page, route):
    """``process_recording`` took (video) uploads outside admission; ``stream/`` serves
    media streams this page never makes."""
    url, _, _ = page
    with httpx.Client(base_url=url, timeout=30) as client:
        r = client.post(
            route,
            files={"video": ("v.mp4", os.urandom(4096), "video/mp4")},
            headers={"X-API-Key": ALICE},
        )
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "file_not_served"
