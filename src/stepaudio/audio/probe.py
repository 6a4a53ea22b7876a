"""Audio metadata from the container, without decoding the whole file."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av

from stepaudio.errors import InvalidAudio


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about a recording (``duration`` as counted, once
    ``measure.inspect`` has looked: then ``header_duration`` is what the header claimed)."""

    format: str
    codec: str
    duration: float
    sample_rate: int
    channels: int
    bitrate: int | None
    size_bytes: int
    sample_width: int = 2
    """Bytes per sample after our decode (16-bit); the seed reported the same."""
    header_duration: float | None = None
    """The duration the container's metadata claims, when ``duration`` was counted."""

    @property
    def frame_count(self) -> int:
        return round(self.duration * self.sample_rate)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "frame_count": self.frame_count}


def open_container(path: Path) -> av.container.InputContainer:
    """Open ``path`` with PyAV, translating its errors into :class:`InvalidAudio`."""
    if path.stat().st_size == 0:
        raise InvalidAudio("The audio file is empty.", param="audio")
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidAudio(f"Not a readable audio file: {exc}", param="audio") from exc


def audio_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream:
    if not container.streams.audio:
        raise InvalidAudio("The file has no audio stream.", param="audio")
    return container.streams.audio[0]


def probe(path: Path) -> AudioInfo:
    """Read format, codec, duration, rate, channels and bitrate from metadata."""
    with open_container(path) as container:
        stream = audio_stream(container)
        duration = _duration(container, stream)
        ctx = stream.codec_context
        if not ctx.sample_rate or duration <= 0:
            raise InvalidAudio("The file holds no decodable audio.", param="audio")
        return AudioInfo(
            format=container.format.name,
            codec=ctx.name,
            duration=round(duration, 3),
            sample_rate=ctx.sample_rate,
            channels=ctx.channels or 1,
            bitrate=stream.bit_rate or container.bit_rate or None,
            size_bytes=path.stat().st_size,
        )


def _duration(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0
