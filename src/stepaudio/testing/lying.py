"""Recordings whose headers lie about their duration, built from real audio.

A hostile client edits one field of a real file: FLAC's STREAMINFO total-samples, an MP3's
Xing/Info frame count, WAV's RIFF and data sizes. The audio itself stays real and decodes
to its full length (except WAV, whose demuxer stops at the data size it was told).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.testing.encode import write_audio

_MP3_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MP3_RATES = (44100, 48000, 32000)
_MP3_FRAME_SAMPLES = 1152  # MPEG-1 layer III


def lying_wav(pcm: np.ndarray, path: Path, claim_s: float) -> Path:
    """A WAV holding all of ``pcm`` whose RIFF and data sizes claim ``claim_s``."""
    write_audio(pcm, path, "wav")
    data = bytearray(path.read_bytes())
    at = data.find(b"data")
    claimed = int(claim_s * SAMPLE_RATE) * 2
    struct.pack_into("<I", data, at + 4, claimed)
    struct.pack_into("<I", data, 4, at + claimed)
    path.write_bytes(data)
    return path


def lying_flac(pcm: np.ndarray, path: Path, claim_s: float) -> Path:
    """A FLAC holding all of ``pcm`` whose STREAMINFO total-samples field claims ``claim_s``."""
    write_audio(pcm, path, "flac")
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0, "STREAMINFO comes first"
    info = 8  # "fLaC" + the block header
    rate = int.from_bytes(data[info + 10 : info + 13], "big") >> 4
    # Bytes 10..17 of STREAMINFO: rate (20 bits), channels, bits, total samples (36 bits).
    packed = int.from_bytes(data[info + 10 : info + 18], "big")
    mask = (1 << 36) - 1
    packed = (packed & ~mask) | int(claim_s * rate)
    data[info + 10 : info + 18] = packed.to_bytes(8, "big")
    path.write_bytes(data)
    return path


def lying_mp3(pcm: np.ndarray, path: Path, repeat: int, claim_s: float) -> Path:
    """An MP3 of ``pcm`` played ``repeat`` times whose Xing/Info frame claims ``claim_s``.

    ``pcm`` is encoded once and its frames repeated (encoding 20 minutes takes ~45 s here);
    the Info frame's byte count is set to the real size, so ffmpeg believes its frame count
    instead of falling back to a bitrate estimate as it does for concatenated files.
    """
    one = write_audio(pcm, path, "mp3").read_bytes()
    start = _id3_size(one)
    info_len = _frame_len(one, start)
    frames = one[start + info_len :]
    head = bytearray(one[: start + info_len])
    tag = max(head.find(b"Info"), head.find(b"Xing"))
    flags = struct.unpack_from(">I", head, tag + 4)[0]
    assert flags & 3 == 3, "the Info frame carries frame and byte counts"
    rate = _MP3_RATES[(head[start + 2] >> 2) & 3]
    total = len(head) + len(frames) * repeat
    struct.pack_into(">I", head, tag + 8, round(claim_s * rate / _MP3_FRAME_SAMPLES))
    struct.pack_into(">I", head, tag + 12, total - start)
    with open(path, "wb") as out:
        out.write(head)
        for _ in range(repeat):
            out.write(frames)
    return path


def _id3_size(data: bytes) -> int:
    if data[:3] != b"ID3":
        return 0
    size = 0
    for b in data[6:10]:
        size = (size << 7) | (b & 0x7F)  # syncsafe
    return 10 + size


def _frame_len(data: bytes, at: int) -> int:
    h = data[at : at + 4]
    assert h[0] == 0xFF and h[1] & 0xE0 == 0xE0, "an MPEG audio frame starts here"
    kbps = _MP3_KBPS[h[2] >> 4]
    rate = _MP3_RATES[(h[2] >> 2) & 3]
    padding = (h[2] >> 1) & 1
    return 144 * kbps * 1000 // rate + padding
