"""Audio metadata from the container, without decoding the whole file, and the one way
every part of the service opens an audio file.

FFmpeg's auto-detection knows demuxers that are not audio files but lists of other files:
HLS and DASH playlists, ``concat``/``ffconcat`` scripts, image sequences. Opened by path,
an uploaded ``.m3u8`` naming ``/srv/x/secret.wav`` made FFmpeg read that file (any file
the process could read, its existence probed, upload limits bypassed by a 100-byte
upload). So ``open_container`` allows only the demuxers of audio containers
(``AUDIO_DEMUXERS``) and only FFmpeg's ``file`` protocol (no ``concat:``, ``subfile:``,
``http:`` or any other, for the file itself or for anything a demuxer would open next),
and names the file as ``file:PATH`` so a path is never read as a protocol string.
"""

from __future__ import annotations

import errno
import re
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


AUDIO_DEMUXERS = (
    "mp3",
    "wav",
    "w64",
    "flac",
    "ogg",
    "mov",  # m4a, mp4, 3gp
    "aac",
    "matroska",  # webm too
    "asf",  # wma
    "amr",
    "aiff",
    "caf",
    "wv",
    "ape",
    "mpegts",
)
"""Containers FFmpeg may detect in an upload: audio files, never playlists or scripts
(hls, dash, concat, image2, …), which open other files."""
AUDIO_SUFFIXES = frozenset(
    [
        ".mp3",
        ".wav",
        ".w64",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".m4a",
        ".mp4",
        ".aac",
        ".webm",
        ".weba",
        ".mka",
        ".wma",
        ".asf",
        ".amr",
        ".aiff",
        ".aif",
        ".caf",
        ".wv",
        ".ape",
        ".ts",
    ]
)


def stored_suffix(client_name: str) -> str:
    """The suffix our copy of an upload may carry: the client's, when it names an audio
    format (a hint for FFmpeg's detection), else none (``.m3u8``, ``.ffconcat``, ``.mpd``…
    are dropped: our files are named by us)."""
    suffix = Path(client_name).suffix.lower()
    return suffix if suffix in AUDIO_SUFFIXES else ""


_OPEN_OPTIONS = {
    "format_whitelist": ",".join(AUDIO_DEMUXERS),
    "protocol_whitelist": "file",
}


def ffmpeg_reason(exc: Exception) -> str:
    """FFmpeg's reason in words ("Invalid data found when processing input"), without
    PyAV's ``[Errno 1094995529]`` (FFmpeg's error tag, which tells a person nothing) or
    the path it opened."""
    reason = getattr(exc, "strerror", None) or str(exc)
    return re.sub(r"^\[Errno -?\d+\]\s*", "", reason).split(": '", 1)[0].rstrip(".")


def open_container(path: Path) -> av.container.InputContainer:
    """Open ``path`` with PyAV as one audio file and nothing else (see the module's
    docstring), translating its errors into :class:`InvalidAudio`."""
    if path.stat().st_size == 0:
        raise InvalidAudio("The audio file is empty.", param="audio")
    try:
        return av.open(
            f"file:{path.absolute()}",
            mode="r",
            options=dict(_OPEN_OPTIONS),
            metadata_errors="ignore",
        )
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, av.error.ArgumentError) and exc.errno == errno.EINVAL:
            # What FFmpeg answers when the detected container is not on the list.
            raise InvalidAudio(
                f"'{path}' is not an audio container this service reads (playlists and "
                "other lists of files are refused).",
                param="audio",
                code="unsupported_container",
            ) from exc
        # FFmpeg's reason, and the file as we named it: the routes put the client's name
        # in its place (``api.uploads.in_client_terms``).
        raise InvalidAudio(
            f"Not a readable audio file: {ffmpeg_reason(exc)}: '{path}'", param="audio"
        ) from exc


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
