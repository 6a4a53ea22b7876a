"""Bad input gets 400 (or 413) with the error JSON, never a 500, and leaves no file behind.

On a scripted engine (no model): the subject is the refusal, and a refused request never
reaches the engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from stepaudio.api import create_app
from stepaudio.config import Settings
from stepaudio.testing.encode import write_audio
from stepaudio.testing.longaudio import load_pcm
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip


def assert_error(r: httpx.Response, status: int, param: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "error"
    assert {"message", "type", "param", "code"} <= body["error"].keys()
    assert body["error"]["message"]
    if param:
        assert body["error"]["param"] == param
    return body["error"]


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Settings, ScriptedEngine]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("bad-input"), _env_file=None)
    engine = ScriptedEngine()
    with serve_in_thread(create_app(settings, engine=engine), settings=settings) as url:
        yield url, settings, engine


@pytest.fixture
def client(service: tuple[str, Settings, ScriptedEngine]) -> Iterator[httpx.Client]:
    """A client of the scripted service; the test fails if any request reached the engine."""
    url, _, engine = service
    engine.windows.clear()
    with httpx.Client(base_url=url, timeout=60) as c:
        yield c
    assert engine.windows == [], "a refused request reached the engine"


@pytest.fixture(scope="module")
def truncated_mp3(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    tmp = tmp_path_factory.mktemp("trunc")
    pcm = np.tile(load_pcm(clip("en/jfk.flac")), 6)
    data = write_audio(pcm, tmp / "long.mp3").read_bytes()
    return data[: len(data) // 3]


BAD_FILES = {
    "empty": b"",
    "random": bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8)),
    "text": b"This is a plain text file, not audio at all.\n" * 100,
}


@pytest.mark.parametrize("endpoint", ["/api/process", "/api/audio/info"])
@pytest.mark.parametrize("kind", [*BAD_FILES, "truncated"])
def test_bad_files_get_400(
    kind: str, endpoint: str, client: httpx.Client, truncated_mp3: bytes, service
):
    _, settings, _ = service
    content = truncated_mp3 if kind == "truncated" else BAD_FILES[kind]
    r = client.post(endpoint, files={"audio": ("clip.mp3", content)}, data={"mode": "asr"})
    error = assert_error(r, 400, "audio")
    assert error["type"] == "invalid_request_error"
    leftovers = list((settings.data_dir / "uploads").glob("*")) + list(
        (settings.data_dir / "tmp").glob("*")
    )
    assert leftovers == []


def test_unknown_mode_is_400_not_s2t(client: httpx.Client):
    with open(clip("en/jfk.flac"), "rb") as f:
        r = client.post("/api/process", files={"audio": ("a.flac", f)}, data={"mode": "dance"})
    assert_error(r, 400, "mode")


def test_missing_audio_is_400(client: httpx.Client):
    r = client.post("/api/process", data={"mode": "asr"})
    assert_error(r, 400, "audio")


@pytest.mark.parametrize(
    "fields",
    [
        {"max_tokens": "lots"},
        {"max_tokens": "0"},
        {"temperature": "hot"},
        {"top_p": "1.5"},
        {"segment_duration": "1"},
    ],
)
def test_bad_numbers_are_400(fields: dict, client: httpx.Client):
    with open(clip("en/jfk.flac"), "rb") as f:
        r = client.post("/api/process", files={"audio": ("a.flac", f)}, data=fields)
    assert_error(r, 400, next(iter(fields)))


def test_unknown_path_is_json_404(client: httpx.Client):
    r = client.get("/api/nothing-here")
    assert_error(r, 404)


def test_limits_give_413(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, max_upload_mb=0.5, max_audio_seconds=5, _env_file=None)
    engine = ScriptedEngine()
    with (
        serve_in_thread(create_app(settings, engine=engine)) as url,
        httpx.Client(base_url=url, timeout=60) as c,
    ):
        with open(clip("en/jfk.flac"), "rb") as f:  # 1.1 MB
            assert_error(c.post("/api/process", files={"audio": ("a.flac", f)}), 413, "audio")
        with open(clip("en/librispeech-1995-1837-0001.wav"), "rb") as f:  # 270 KB, 8.7 s
            error = assert_error(c.post("/api/process", files={"audio": ("a.wav", f)}), 413)
        assert error["code"] == "audio_too_long"
    assert list((tmp_path / "uploads").glob("*")) == []
    assert engine.windows == []


def test_api_keys(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, api_keys=["sekrit"], _env_file=None)
    engine = ScriptedEngine()
    with (
        serve_in_thread(create_app(settings, engine=engine)) as url,
        httpx.Client(base_url=url, timeout=60) as c,
    ):
        with open(clip("en/sr_english.wav"), "rb") as f:
            audio = f.read()
        r = c.post("/api/process", files={"audio": ("a.wav", audio)}, data={"mode": "asr"})
        assert_error(r, 401)
        assert engine.windows == []
        r = c.post(
            "/api/process",
            files={"audio": ("a.wav", audio)},
            data={"mode": "asr"},
            headers={"Authorization": "Bearer sekrit"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["answer"].startswith("heard ") and len(engine.windows) == 1
        assert c.get("/health").status_code == 200
