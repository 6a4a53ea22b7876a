"""Write 16 kHz mono int16 samples in any of the formats the service accepts (PyAV).

Tests and benchmarks build their inputs with this from real recordings: every format,
any length, nothing generated committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np

from stepaudio.audio.decode import SAMPLE_RATE

# suffix → (container format, codec, sample rate, channels)
FORMATS: dict[str, tuple[str, str, int, int]] = {
    "mp3": ("mp3", "libmp3lame", 44100, 2),
    "wav": ("wav", "pcm_s16le", 16000, 1),
    "flac": ("flac", "flac", 44100, 2),
    "ogg": ("ogg", "libopus", 48000, 2),
    "m4a": ("ipod", "aac", 44100, 2),
    "aac": ("adts", "aac", 44100, 2),
    "webm": ("webm", "libopus", 48000, 2),
    "wma": ("asf", "wmav2", 44100, 2),
    "amr": ("amr", "libopencore_amrnb", 8000, 1),
    "opus": ("opus", "libopus", 48000, 1),
    "aiff": ("aiff", "pcm_s16be", 44100, 1),
}
SEED_FORMATS = ("mp3", "wav", "flac", "ogg", "m4a", "aac", "webm", "wma", "amr")


def write_audio(
    chunks: np.ndarray | Iterable[np.ndarray], path: Path, fmt: str | None = None
) -> Path:
    """Encode 16 kHz mono int16 samples (one array or an iterable of chunks) to ``path``."""
    fmt = fmt or path.suffix.lstrip(".")
    container_fmt, codec, rate, channels = FORMATS[fmt]
    if isinstance(chunks, np.ndarray):
        chunks = [chunks[i : i + SAMPLE_RATE * 10] for i in range(0, chunks.size, SAMPLE_RATE * 10)]
    layout = "stereo" if channels == 2 else "mono"
    with av.open(str(path), "w", format=container_fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        if not isinstance(stream, av.AudioStream):
            raise TypeError(f"{codec} is not an audio codec")
        # These encoders refuse to open without an explicit bit rate.
        bit_rate = {"libopencore_amrnb": 12200, "wmav2": 128000}.get(codec)
        if bit_rate:
            stream.bit_rate = bit_rate
        resampler = av.AudioResampler(format=stream.codec_context.format, layout=layout, rate=rate)
        for chunk in chunks:
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(chunk, dtype=np.int16).reshape(1, -1),
                format="s16",
                layout="mono",
            )
            frame.sample_rate = SAMPLE_RATE
            for resampled in resampler.resample(frame):
                out.mux(stream.encode(resampled))
        for resampled in resampler.resample(None):
            out.mux(stream.encode(resampled))
        out.mux(stream.encode(None))
    return path


def realtime_pcm(pcm16k: np.ndarray) -> bytes:
    """16-kHz samples as the Realtime protocol's default audio: PCM16 at 24 kHz, little
    endian (what ``input_audio_buffer.append`` carries, base64-encoded)."""
    idx = np.arange(0, len(pcm16k) - 1, 2 / 3)
    return np.interp(idx, np.arange(len(pcm16k)), pcm16k).astype("<i2").tobytes()
