"""What `stepaudio bench` sends: durations from the command line, and one recording cut or
looped to each of them (decoded once, memory-mapped, encoded as a user would upload)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stepaudio.audio.decode import SAMPLE_RATE, DecodedAudio

CLIP_SUFFIXES = {".wav", ".flac", ".mp3"}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}


def parse_durations(text: str) -> list[float]:
    """``"10,30,60"`` → seconds. A bare number is minutes (as the seed's table); ``30s``,
    ``1.5m``, ``1h`` say their unit."""
    out = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        match = _DURATION.match(item)
        if not match:
            raise ValueError(f"not a duration: {item!r} (use e.g. 10, 30s, 1.5m, 1h)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "m").lower()]
        if seconds <= 0:
            raise ValueError(f"a duration must be positive: {item!r}")
        out.append(seconds)
    if not out:
        raise ValueError("no durations given")
    return out


def parse_ints(text: str, what: str = "value") -> list[int]:
    try:
        out = [int(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise ValueError(f"not a list of whole numbers: {text!r}") from exc
    if not out or min(out) < 1:
        raise ValueError(f"each {what} must be at least 1: {text!r}")
    return out


def duration_label(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:g} s"


@dataclass
class BenchInput:
    duration_s: float
    path: Path
    size_bytes: int


def looped(samples: np.ndarray, n: int, chunk: int = SAMPLE_RATE * 10) -> Iterator[np.ndarray]:
    """The first ``n`` samples of ``samples`` repeated end to end, as views of ``chunk``."""
    if samples.size == 0:
        raise ValueError("the source recording has no audio")
    at = 0
    while at < n:
        start = at % samples.size
        take = min(chunk, samples.size - start, n - at)
        yield samples[start : start + take]
        at += take


def _source_key(source: Path) -> str:
    st = source.stat()
    return hashlib.sha1(f"{source.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[
        :10
    ]


def prepare_inputs(
    source: Path, durations_s: Sequence[float], work_dir: Path, fmt: str = "mp3"
) -> list[BenchInput]:
    """``source`` cut or looped to each duration, encoded as ``fmt``; reused when the same
    source was prepared before (an hour of mp3 takes a while to encode)."""
    from stepaudio.testing.encode import write_audio

    work_dir.mkdir(parents=True, exist_ok=True)
    key = _source_key(source)
    wanted = {d: work_dir / f"{source.stem}-{key}-{d:g}s.{fmt}" for d in durations_s}
    missing = [d for d, p in wanted.items() if not p.exists()]
    if missing:
        with DecodedAudio.from_file(source, work_dir) as decoded:
            for d in missing:
                partial = wanted[d].with_suffix(".partial." + fmt)
                write_audio(looped(decoded.samples, round(d * SAMPLE_RATE)), partial, fmt)
                partial.replace(wanted[d])
    return [BenchInput(d, p, p.stat().st_size) for d, p in wanted.items()]


def joined_clips(clips_dir: Path, work_dir: Path) -> Path | None:
    """The recordings in ``clips_dir`` joined once (a second of silence between them) into
    one WAV under ``work_dir``; None when the folder holds none. The caller picks the
    folder (in a source checkout, ``tests/data/en``): this module knows no repo layout."""
    from stepaudio.testing.encode import write_audio
    from stepaudio.testing.longaudio import load_pcm

    clips = sorted(p for p in clips_dir.glob("*") if p.suffix in CLIP_SUFFIXES)
    if not clips:
        return None
    target = work_dir / f"joined-clips-{_source_key(clips_dir)}.wav"
    if not target.exists():
        work_dir.mkdir(parents=True, exist_ok=True)
        gap = np.zeros(SAMPLE_RATE, dtype=np.int16)
        parts = [x for c in clips for x in (load_pcm(c), gap)]
        write_audio(np.concatenate(parts), target)
    return target
