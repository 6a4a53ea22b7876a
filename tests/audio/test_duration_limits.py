"""Duration limits hold on what is decoded: files whose headers lie stop early.

The lying files are real recordings with one header field edited (testing/lying.py). The
decoder and the packet counter are checked on their own here; tests/api/test_limits_decoded.py
sends the same files to a running server.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from stepaudio.audio import DecodedAudio, DurationCap, inspect, probe
from stepaudio.audio.decode import SAMPLE_RATE, iter_pcm
from stepaudio.audio.limits import HEADER_FACTOR, HEADER_SLACK_S
from stepaudio.errors import PayloadTooLarge
from stepaudio.testing.encode import FORMATS, write_audio
from stepaudio.testing.lying import lying_flac, lying_mp3, lying_wav

MINUTES = 20
CLAIM_S = 5.0


@pytest.fixture(scope="module")
def liars(minute: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """20-minute recordings whose headers claim 5 s, in two containers."""
    tmp = tmp_path_factory.mktemp("liars")
    return {
        "flac": lying_flac(np.tile(minute, MINUTES), tmp / "liar.flac", CLAIM_S),
        "mp3": lying_mp3(minute, tmp / "liar.mp3", MINUTES, CLAIM_S),
    }


def decoded_until_refused(path: Path, cap: DurationCap) -> tuple[float, PayloadTooLarge]:
    """Seconds of audio the decoder produced before it refused, and the refusal."""
    seconds = 0.0
    with pytest.raises(PayloadTooLarge) as refused:
        for chunk in iter_pcm(path, cap=cap):
            seconds += chunk.size / SAMPLE_RATE
    return seconds, refused.value


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_lying_header_hides_twenty_minutes(fmt: str, liars: dict[str, Path]):
    """The attack: the header says 5 s, an uncapped decoder finds 20 minutes."""
    assert probe(liars[fmt]).duration == pytest.approx(CLAIM_S, abs=0.1)
    seconds = sum(chunk.size for chunk in iter_pcm(liars[fmt])) / SAMPLE_RATE
    assert seconds == pytest.approx(MINUTES * 60, abs=1.0)


@pytest.mark.parametrize("limit", [60.0, None], ids=["limit-60", "no-limit"])
@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_decoder_stops_soon_after_the_header_claim(
    fmt: str, limit: float | None, liars: dict[str, Path]
):
    header = probe(liars[fmt]).duration
    started = time.perf_counter()
    seconds, refusal = decoded_until_refused(liars[fmt], DurationCap(limit, header))
    took = time.perf_counter() - started
    ceiling = header * HEADER_FACTOR + HEADER_SLACK_S
    assert refusal.code == "audio_longer_than_header" and refusal.param == "audio"
    # The decoder yields ~2 s at a time: it stopped within one chunk of the ceiling.
    assert ceiling < seconds + 2.5 and seconds <= ceiling + 0.1
    print(f"{fmt}: refused after decoding {seconds:.1f} s of 1200 s in {took:.2f} s")


def test_decoder_stops_at_the_limit_when_the_header_lies_less(minute: np.ndarray, tmp_path: Path):
    """A header claiming 40 s (ceiling 90 s) on 20 minutes: the 60 s limit stops it."""
    path = lying_flac(np.tile(minute, MINUTES), tmp_path / "liar40.flac", 40.0)
    seconds, refusal = decoded_until_refused(path, DurationCap(60.0, probe(path).duration))
    assert refusal.code == "audio_too_long"
    # Refused on the chunk that crossed 60 s (chunks are ~2 s): nothing past it decoded.
    assert 57.5 < seconds <= 60.0


def test_decoded_audio_removes_its_file_when_refused(liars: dict[str, Path], tmp_path: Path):
    cap = DurationCap(60.0, probe(liars["flac"]).duration)
    with pytest.raises(PayloadTooLarge):
        DecodedAudio.from_file(liars["flac"], tmp_path / "pcm", cap=cap)
    assert list((tmp_path / "pcm").iterdir()) == []


@pytest.mark.parametrize("limit", [60.0, None], ids=["limit-60", "no-limit"])
@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_inspect_refuses_liars_without_decoding(
    fmt: str, limit: float | None, liars: dict[str, Path]
):
    started = time.perf_counter()
    with pytest.raises(PayloadTooLarge) as refused:
        inspect(liars[fmt], limit)
    assert refused.value.code == "audio_longer_than_header"
    assert time.perf_counter() - started < 2.0


def test_lying_wav_is_read_only_as_far_as_it_claims(minute: np.ndarray, tmp_path: Path):
    """WAV's demuxer stops at the data size it was told: the lie only shortens the file."""
    path = lying_wav(np.tile(minute, MINUTES), tmp_path / "liar.wav", CLAIM_S)
    info = inspect(path, 60.0)
    assert info.duration == pytest.approx(CLAIM_S, abs=0.01)
    with DecodedAudio.from_file(path, tmp_path, cap=DurationCap(60.0, info.duration)) as pcm:
        assert pcm.duration == pytest.approx(CLAIM_S, abs=0.01)


def test_honest_long_header_is_refused_before_reading(minute: np.ndarray, tmp_path: Path):
    path = lying_mp3(minute, tmp_path / "honest.mp3", MINUTES, MINUTES * 60.0)
    started = time.perf_counter()
    with pytest.raises(PayloadTooLarge) as refused:
        inspect(path, 60.0)
    assert refused.value.code == "audio_too_long"
    assert time.perf_counter() - started < 0.5
    assert inspect(path, None).duration == pytest.approx(MINUTES * 60, abs=1.5)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_honest_files_of_every_format_pass(fmt: str, minute: np.ndarray, tmp_path: Path):
    """Bitrate-estimated headers (aac, amr) are close enough to pass the header ceiling,
    and a file just under the limit is accepted by both counters."""
    pcm = minute[: 55 * SAMPLE_RATE]
    path = write_audio(pcm, tmp_path / f"a.{fmt}")
    info = inspect(path, 60.0)
    # Packet durations are exact but for ASF (wma), whose are rounded to milliseconds.
    assert info.duration == pytest.approx(55.0, rel=0.02)
    assert info.header_duration is not None
    with DecodedAudio.from_file(path, tmp_path, cap=DurationCap(60.0, info.header_duration)) as a:
        assert a.duration == pytest.approx(55.0, abs=0.2)
