"""Uploads open as one audio file, never as a list of other files (second review,
finding 2).

An uploaded ``.m3u8`` naming ``/srv/x/secret.wav`` was transcribed: ``av.open`` detects
any demuxer (hls, concat, dash…) and the upload kept the client's suffix. Here each
playlist and script FFmpeg knows, and the protocol strings they could name, is uploaded
through every route that takes a file, against a real server on loopback (the scripted
engine reports what audio reached it); the secret is a real recording outside the data
folder. Every one is refused with 400 before any audio reaches the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from stepaudio.api import create_app
from stepaudio.api.uploads import save_upload
from stepaudio.audio.probe import open_container, stored_suffix
from stepaudio.config import Settings
from stepaudio.errors import InvalidAudio
from stepaudio.testing.encode import write_audio
from stepaudio.testing.longaudio import build
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip

KEY = "playlist-key"
AUTH = {"X-API-Key": KEY}


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real recordings outside the service's folders, in the formats playlists name."""
    folder = tmp_path_factory.mktemp("srv-x")
    pcm, _ = build([clip("en/jfk.flac")], 1)
    return {fmt: write_audio(pcm, folder / f"secret.{fmt}") for fmt in ("wav", "mp3", "aac")}


def playlists(s: dict[str, Path]) -> dict[str, tuple[str, str]]:
    """name → (client's file name, content)."""
    mp3, wav, aac = s["mp3"], s["wav"], s["aac"]
    hls = "#EXTM3U\n#EXT-X-TARGETDURATION:12\n#EXTINF:11,\n{}\n#EXT-X-ENDLIST\n"
    return {
        "hls-mp3": ("talk.m3u8", hls.format(mp3)),
        "hls-aac": ("talk.m3u8", hls.format(aac)),
        "hls-file-url": ("talk.m3u8", hls.format(f"file://{mp3}")),
        "hls-concat-protocol": ("talk.m3u8", hls.format(f"concat:{mp3}|{mp3}")),
        "hls-subfile-protocol": ("talk.m3u8", hls.format(f"subfile,,start,0,end,0,,:{mp3}")),
        "hls-as-mp3-name": ("talk.mp3", hls.format(mp3)),
        "hls-no-suffix": ("recording", hls.format(mp3)),
        "ffconcat": ("talk.ffconcat", f"ffconcat version 1.0\nfile '{wav}'\n"),
        "ffconcat-relative": (
            "talk.ffconcat",
            f"ffconcat version 1.0\nfile '{'../' * 12}{str(wav).lstrip('/')}'\n",
        ),
        "ffconcat-as-wav-name": ("talk.wav", f"ffconcat version 1.0\nfile '{wav}'\n"),
        "dash": (
            "talk.mpd",
            '<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" '
            'type="static" mediaPresentationDuration="PT11S" minBufferTime="PT1S" '
            'profiles="urn:mpeg:dash:profile:isoff-on-demand:2011"><Period><AdaptationSet '
            'mimeType="audio/mpeg"><Representation id="a" bandwidth="64000">'
            f"<BaseURL>{mp3}</BaseURL></Representation></AdaptationSet></Period></MPD>",
        ),
        "concat-protocol-text": ("talk.mp3", f"concat:{mp3}|{mp3}"),
    }


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ScriptedEngine]]:
    engine = ScriptedEngine()
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("playlists"), api_keys=[KEY], _env_file=None
    )
    with serve_in_thread(create_app(settings, engine=engine), settings=settings) as url:
        yield url, engine


ROUTES = {
    "/api/process": ("audio", {"mode": "asr"}),
    "/api/audio/info": ("audio", {}),
    "/api/task": ("audio", {"mode": "asr"}),
    "/v1/audio/transcriptions": ("file", {"model": "whisper-1"}),
    "/v1/audio/translations": ("file", {"model": "whisper-1"}),
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_no_playlist_reads_another_file_through_any_route(service, secrets, route):
    url, engine = service
    field, form = ROUTES[route]
    before = len(engine.windows)
    with httpx.Client(base_url=url, timeout=60, headers=AUTH) as client:
        for name, (filename, content) in playlists(secrets).items():
            r = client.post(route, data=form, files={field: (filename, content.encode())})
            assert r.status_code == 400, (name, r.status_code, r.text[:300])
            error = r.json()["error"]
            assert error["code"] in ("unsupported_container", "invalid_audio"), (name, error)
            assert "secret" not in r.text, (name, r.text)  # nothing of the file is told
    assert len(engine.windows) == before, "a playlist's target reached the engine"


def test_the_secret_itself_is_readable_audio(service, secrets):
    """The control: the same files uploaded directly are transcribed (so the refusals
    above are about the playlists, not about the targets)."""
    url, engine = service
    with httpx.Client(base_url=url, timeout=60, headers=AUTH) as client:
        for path in secrets.values():
            r = client.post("/api/process", data={"mode": "asr"}, files={"audio": path.open("rb")})
            assert r.status_code == 200, r.text
            assert r.json()["transcript"].startswith("heard 12.5")


@pytest.mark.parametrize(
    "name", list(playlists({k: Path(f"/x/s.{k}") for k in ("wav", "mp3", "aac")}))
)
def test_open_container_refuses_each_playlist(secrets, tmp_path, name):
    filename, content = playlists(secrets)[name]
    path = tmp_path / (filename or "upload")
    path.write_text(content)
    with pytest.raises(InvalidAudio) as refused:
        open_container(path)
    assert refused.value.code in ("unsupported_container", "invalid_audio")


def test_uploads_are_stored_under_a_name_of_ours(tmp_path):
    class Upload:
        def __init__(self, name: str):
            self.filename = name
            self._data = [b"x" * 10, b""]

        async def read(self, size: int = -1) -> bytes:
            return self._data.pop(0)

    for client_name, suffix in [
        ("talk.m3u8", ""),
        ("talk.ffconcat", ""),
        ("a.mpd", ""),
        ("../../etc/x.MP3", ".mp3"),
        ("talk.wav", ".wav"),
        ("concat:a|b", ""),
    ]:
        stored = asyncio.run(save_upload(Upload(client_name), tmp_path, 1 << 20))
        assert stored.path.parent == tmp_path
        assert stored.path.name.startswith("upload-")
        assert stored.path.suffix == suffix == stored_suffix(client_name), client_name


def test_every_format_we_take_still_opens(tmp_path):
    pcm = (np.sin(np.arange(16000) / 9) * 6000).astype(np.int16)
    for fmt in ("mp3", "wav", "flac", "ogg", "m4a", "aac", "webm", "wma", "amr", "opus", "aiff"):
        with open_container(write_audio(pcm, tmp_path / f"a.{fmt}")) as container:
            assert container.streams.audio, fmt
