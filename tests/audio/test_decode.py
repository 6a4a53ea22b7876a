"""Every accepted format decodes to the right duration; bad files get clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stepaudio.audio import DecodedAudio, encode_wav, probe
from stepaudio.audio.cut import plan_cuts
from stepaudio.audio.measure import inspect
from stepaudio.errors import InvalidAudio
from stepaudio.testing.encode import FORMATS, write_audio
from stepaudio.testing.longaudio import load_pcm
from tests.helpers import clip


@pytest.fixture(scope="module")
def jfk_pcm() -> np.ndarray:
    return load_pcm(clip("en/jfk.flac"))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_decodes_to_its_duration(fmt: str, jfk_pcm: np.ndarray, tmp_path: Path):
    path = write_audio(jfk_pcm, tmp_path / f"jfk.{fmt}")
    info = probe(path)
    with DecodedAudio.from_file(path, tmp_path / "pcm") as decoded:
        assert abs(decoded.duration - jfk_pcm.size / 16000) <= 0.1
        # Metadata durations of raw streams (amr, aac) are bitrate estimates.
        assert info.duration == pytest.approx(decoded.duration, rel=0.05)
        assert decoded.samples.dtype == np.dtype("<i2")
        raw = decoded.raw_path
        assert raw.exists()
    assert not raw.exists()


def test_probe_reports_metadata():
    info = probe(clip("en/jfk.flac"))
    assert (info.format, info.codec, info.sample_rate, info.channels) == ("flac", "flac", 44100, 2)
    assert info.duration == pytest.approx(11.0, abs=0.05)
    assert info.frame_count == pytest.approx(11.0 * 44100, rel=0.01)


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, this is a text file and not audio\n" * 20, bytes(range(256)) * 64],
    ids=["empty", "text", "random"],
)
def test_garbage_is_invalid_audio(content: bytes, tmp_path: Path):
    path = tmp_path / "bad.mp3"
    path.write_bytes(content)
    with pytest.raises(InvalidAudio) as refused:
        inspect(path, None)
    # Words a person can act on, not PyAV's "[Errno 1094995529]".
    assert "Errno" not in refused.value.message and "1094995529" not in refused.value.message
    with pytest.raises(InvalidAudio), DecodedAudio.from_file(path, tmp_path) as decoded:
        assert decoded.n_samples > 1600, "garbage must not decode to audio"


def test_truncated_mp3_is_detected(jfk_pcm: np.ndarray, tmp_path: Path):
    long = np.tile(jfk_pcm, 6)
    path = write_audio(long, tmp_path / "long.mp3")
    data = path.read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) // 3])
    info = probe(cut)
    assert info.duration > 60, "the header still promises the whole recording"
    with pytest.raises(InvalidAudio, match="truncated"):
        inspect(cut, None)


def test_cuts_fall_in_silence_and_respect_the_limit(jfk_pcm: np.ndarray):
    gap = np.zeros(16000, dtype=np.int16)
    pcm = np.concatenate([jfk_pcm, gap, jfk_pcm, gap, jfk_pcm])
    spans = plan_cuts(pcm, 16000, 15.0)
    assert spans[0].start == 0 and spans[-1].end == pytest.approx(pcm.size / 16000, abs=0.01)
    for a, b in zip(spans, spans[1:], strict=False):
        assert a.end == b.start
    for span in spans:
        assert span.duration <= 15.0 + 1e-3
    # The jfk clip is 11 s; the first cut must land in the silence after it.
    cut = spans[0].end
    assert 11.0 <= cut <= 12.5
    around = pcm[int((cut - 0.1) * 16000) : int((cut + 0.1) * 16000)].astype(np.float64)
    speech = jfk_pcm.astype(np.float64)
    assert np.sqrt(np.mean(around**2)) < 0.05 * np.sqrt(np.mean(speech**2))


def test_no_empty_last_part():
    pcm = np.ones(16000 * 50, dtype=np.int16)
    spans = plan_cuts(pcm, 16000, 25.0)
    assert all(s.duration > 0.5 for s in spans)


def test_wav_encoding_round_trips(jfk_pcm: np.ndarray, tmp_path: Path):
    path = tmp_path / "part.wav"
    path.write_bytes(encode_wav(jfk_pcm[:16000]))
    assert np.array_equal(load_pcm(path), jfk_pcm[:16000])


def test_release_drops_pages_but_keeps_samples_readable(jfk_pcm: np.ndarray, tmp_path: Path):
    path = write_audio(jfk_pcm, tmp_path / "jfk.wav")
    with DecodedAudio.from_file(path, tmp_path / "pcm") as decoded:
        before = np.array(decoded.samples)
        # Unaligned edges, a sub-page range, the whole file, past the end, empty.
        ranges = [(1.23, 4.56), (2.0, 2.0001), (0.0, decoded.duration), (9.0, 99.0), (3.0, 3.0)]
        for start, end in ranges:
            decoded.release(start, end)
            # The map is file-backed and read-only: dropped pages read back unchanged.
            a, b = round(start * 16000), round(end * 16000)
            assert np.array_equal(decoded.slice(start, end), before[a:b])
        assert np.array_equal(np.array(decoded.samples), before)
    decoded.release(0.0, 1.0)  # after close: nothing to drop, no error
