"""How long a recording really is, found cheaply and within bounds.

``/api/audio/info``, task submission and the web page's probe must not believe the header
(see limits.py), yet a full decode there would make a cheap request cost a minute of CPU
for a 6-hour file. Demuxing and adding up packet durations reads the same frames the
decoder would get, at 4-10x the speed of a decode (20 min: 0.1-0.6 s here against 1.5-4 s)
and stops at the same bounds. The decode in the pipeline stays the authority: it counts
samples and stops on its own, whatever this count said.

Packet durations are exact only for some codecs. Vorbis packets overlap and the Ogg
demuxer's durations can be off by seconds (or, in a file from FFmpeg's own encoder, by a
factor of thousands); WMA's come 0.2-0.5 s short. For every codec not in
``PACKET_EXACT_CODECS`` the packets are decoded and their samples counted, as the
decoder will.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import av

from stepaudio.audio.limits import DurationCap
from stepaudio.audio.probe import AudioInfo, audio_stream, ffmpeg_reason, open_container, probe
from stepaudio.errors import InvalidAudio

PACKET_EXACT_CODECS = frozenset(
    {"mp3", "mp3float", "aac", "flac", "opus", "amrnb", "amrwb", "alac"}
)
"""Codecs whose packet durations add up to what the decoder gives (within a frame), and
PCM (``pcm_*``); anything else is decoded to be counted."""


def _packets_exact(codec: str) -> bool:
    return codec in PACKET_EXACT_CODECS or codec.startswith("pcm_")


def count_seconds(path: Path, cap: DurationCap | None = None) -> float:
    """Seconds of audio in ``path``, stopping once past ``cap``'s bounds: packet durations
    added up where the codec's are exact, else the decoded samples counted.

    A packet without a duration is decoded to learn it (none of the formats we take
    needs that, but a crafted file might leave durations out).
    """
    seconds = 0.0
    with open_container(path) as container:
        stream = audio_stream(container)
        base = float(stream.time_base) if stream.time_base is not None else 0.0
        exact = _packets_exact(stream.codec_context.name)
        try:
            for packet in container.demux(stream):
                if packet.size == 0 and exact:
                    continue  # the flush packet at the end
                if exact and packet.duration and base:
                    seconds += packet.duration * base
                else:
                    seconds += _decoded_seconds(packet)
                if cap is not None:
                    cap.check(seconds)
        except av.error.FFmpegError as exc:
            raise InvalidAudio(
                f"The audio could not be read: {ffmpeg_reason(exc)}.", param="audio"
            ) from exc
    return seconds


def _decoded_seconds(packet: av.Packet[av.AudioStream]) -> float:
    try:
        return sum(f.samples / f.sample_rate for f in packet.decode() if f.sample_rate)
    except av.error.InvalidDataError:
        return 0.0  # a damaged packet is skipped, as the decoder skips it


def check_complete(header_s: float, found_s: float) -> None:
    """Refuse audio that holds far less than its header promises (an interrupted upload)."""
    missing = header_s - found_s
    if missing > max(2.0, 0.1 * header_s):
        raise InvalidAudio(
            f"The file is truncated: its header promises {header_s:.1f} s "
            f"but only {found_s:.1f} s can be read.",
            param="audio",
            code="truncated_audio",
        )


def inspect(path: Path, limit_s: float | None) -> AudioInfo:
    """What the recording is, with its duration as counted (not as its header claims).

    Raises ``PayloadTooLarge`` past ``limit_s`` or far past the header's duration, and
    ``InvalidAudio`` for undecodable, empty or truncated files.
    """
    info = probe(path)
    cap = DurationCap(limit_s, info.duration)
    cap.check_header()
    found = count_seconds(path, cap)
    if found < 0.01:
        raise InvalidAudio("The file holds no decodable audio.", param="audio")
    check_complete(info.duration, found)
    return replace(info, duration=round(found, 3), header_duration=info.duration)
