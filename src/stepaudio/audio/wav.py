"""WAV encoding of decoded parts (what Step-Audio's ``input_audio`` expects)."""

from __future__ import annotations

import io
import wave

import numpy as np

from stepaudio.audio.decode import SAMPLE_RATE


def encode_wav(pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """16-bit mono PCM samples as a complete WAV file."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(np.ascontiguousarray(pcm, dtype="<i2").tobytes())
    return buf.getvalue()
