"""The audio formats of OpenAI's Realtime protocol, turned into our 16 kHz samples as
they arrive: PCM16 at 24 kHz (``audio/pcm``, the older ``pcm16``) and G.711 at 8 kHz
(``audio/pcmu``/``audio/pcma``, the older ``g711_ulaw``/``g711_alaw``). PyAV decodes
G.711 and resamples; its resampler keeps its state between appends, so chunk seams are
not audible to the model."""

from __future__ import annotations

import av
import numpy as np

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.errors import InvalidParameter

# Both spellings of each format: the current session shape's, and the older one's.
FORMATS = {
    "audio/pcm": ("pcm16", 24000),
    "pcm16": ("pcm16", 24000),
    "audio/pcmu": ("pcm_mulaw", 8000),
    "g711_ulaw": ("pcm_mulaw", 8000),
    "audio/pcma": ("pcm_alaw", 8000),
    "g711_alaw": ("pcm_alaw", 8000),
}


class AudioIn:
    """One session's input format: bytes as sent in, 16 kHz int16 samples out."""

    def __init__(self, name: str, rate: int | None = None):
        if name not in FORMATS:
            raise InvalidParameter(
                f"Unsupported audio format '{name}'; use one of: {', '.join(FORMATS)}.",
                param="session.audio.input.format.type",
            )
        self.name = name
        self.codec, self.rate = FORMATS[name]
        if rate is not None and rate != self.rate:
            raise InvalidParameter(
                f"{name} is taken at {self.rate} Hz only, not {rate}.",
                param="session.audio.input.format.rate",
            )
        self._decoder: av.AudioCodecContext | None = None
        if self.codec != "pcm16":
            decoder = av.CodecContext.create(self.codec, "r")
            assert isinstance(decoder, av.AudioCodecContext)  # G.711 is audio
            decoder.sample_rate = self.rate
            decoder.layout = "mono"
            self._decoder = decoder
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._odd = b""

    def seconds(self, data: bytes) -> float:
        width = 2 if self.codec == "pcm16" else 1
        return len(data) / width / self.rate

    def samples(self, data: bytes) -> np.ndarray:
        frames: list[av.AudioFrame] = []
        if self._decoder is None:
            data, self._odd = self._odd + data, b""
            if len(data) % 2:
                data, self._odd = data[:-1], data[-1:]
            pcm = np.frombuffer(data, "<i2").reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate = self.rate
            frames.append(frame)
        else:
            frames.extend(self._decoder.decode(av.Packet(data)))
        out = [r.to_ndarray().reshape(-1) for f in frames for r in self._resampler.resample(f)]
        return np.concatenate(out).astype(np.int16) if out else np.zeros(0, np.int16)
