"""``/api/audio/info`` counts what the decoder counts (second review, found on the way).

Packet durations were added up for every codec: an Ogg Vorbis file came out 1.1 s short
and a WMA file 0.5 s short; a Vorbis file from FFmpeg's own encoder, at 97,000 s, would
have been refused as too long. Codecs whose packets are not exact are now decoded.
"""

from __future__ import annotations

from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from stepaudio.api import create_app
from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.audio.measure import count_seconds
from stepaudio.config import Settings
from stepaudio.testing.encode import write_audio
from stepaudio.testing.longaudio import build
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_in_thread
from tests.helpers import clip


def write_vorbis(pcm: np.ndarray, path: Path) -> Path:
    """Ogg Vorbis through FFmpeg's native encoder (PyAV's wheels carry no libvorbis)."""
    with av.open(str(path), "w", format="ogg") as out:
        stream = out.add_stream("vorbis", rate=44100, layout="stereo")
        stream.codec_context.options = {"strict": "experimental"}
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=44100)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for piece in [*resampler.resample(frame), *resampler.resample(None)]:
            out.mux(stream.encode(piece))
        out.mux(stream.encode(None))
    return path


def decoded_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        return sum(f.samples / f.sample_rate for f in container.decode(audio=0))


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    pcm, _ = build([clip("en/jfk.flac")], 20)
    return pcm


@pytest.mark.parametrize("fmt", ["vorbis", "wma", "ogg", "mp3", "flac", "m4a", "amr"])
def test_counted_as_the_decoder_counts(speech, tmp_path, fmt):
    if fmt == "vorbis":
        path = write_vorbis(speech, tmp_path / "talk.ogg")
    else:
        path = write_audio(speech, tmp_path / f"talk.{fmt}")
    # Within one codec frame (mp3's encoder delay is the largest: ~0.05 s).
    assert count_seconds(path) == pytest.approx(decoded_seconds(path), abs=0.06)


def test_info_route_reports_the_decoded_length(speech, tmp_path):
    files = [write_vorbis(speech, tmp_path / "talk.ogg"), write_audio(speech, tmp_path / "t.wma")]
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)
    with serve_in_thread(create_app(settings, engine=ScriptedEngine()), settings=settings) as url:
        for path in files:
            r = httpx.post(f"{url}/api/audio/info", files={"audio": path.open("rb")}, timeout=60)
            assert r.status_code == 200, r.text
            assert r.json()["duration"] == pytest.approx(decoded_seconds(path), abs=0.01)
