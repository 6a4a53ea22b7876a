"""Voice activity on a stream, frame by frame: Silero (faster-whisper's ONNX copy, already
installed) with OpenAI's ``server_vad`` parameters and defaults.

faster-whisper runs Silero over a whole file; a live session feeds it 32 ms at a time, so
the recurrent state and the 64-sample context are kept here, per stream.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np

from stepaudio.audio.decode import SAMPLE_RATE

FRAME = 512
"""Samples per Silero frame at 16 kHz (32 ms)."""
_CONTEXT = 64
_FRAME_MS = FRAME * 1000 // SAMPLE_RATE


@dataclass(frozen=True)
class VadConfig:
    """OpenAI's ``turn_detection: {type: "server_vad", ...}`` fields, with its defaults."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500


@dataclass(frozen=True)
class Boundary:
    """What changed at ``ms`` from the stream's start: speech ``start``ed, ``pause``d (about
    200 ms of silence: the turn may be over), ``resume``d within the silence allowed, or
    ``stop``ped (``silence_duration_ms`` of silence: the turn is over)."""

    kind: Literal["start", "pause", "resume", "stop"]
    ms: int


@cache
def _silero() -> Any:
    from faster_whisper.vad import get_vad_model

    return get_vad_model().session


_lock = threading.Lock()


def silero() -> Any:
    """The ONNX session, loaded once per process (about 2 MB); each stream keeps its own
    state, so one session serves them all."""
    with _lock:
        return _silero()


class StreamingVad:
    """Feed 16 kHz int16 samples; get the speech boundaries they complete."""

    def __init__(self, config: VadConfig, session: Any = None):
        self.config = config
        self.session = session or silero()
        self._pending = np.zeros(0, np.float32)
        self._context = np.zeros((1, _CONTEXT), np.float32)
        self._state_h = np.zeros((1, 1, 128), np.float32)
        self._state_c = np.zeros((1, 1, 128), np.float32)
        self._ms = 0
        self.speaking = False
        self._silence_ms = 0
        self._stopped_ms = 0
        # A pause is declared a little into the silence, not at its first frame: the
        # VAD calls a word's soft ending silence, and a text made then would lose it.
        settle = min(200, config.silence_duration_ms // 2)
        self._pause_ms = max(_FRAME_MS, settle // _FRAME_MS * _FRAME_MS)

    def feed(self, samples: np.ndarray) -> list[Boundary]:
        audio = np.concatenate([self._pending, samples.astype(np.float32) / 32768.0])
        whole = len(audio) // FRAME * FRAME
        self._pending = audio[whole:]
        found: list[Boundary] = []
        for start in range(0, whole, FRAME):
            boundary = self._frame(audio[start : start + FRAME])
            if boundary is not None:
                found.append(boundary)
        return found

    def _frame(self, frame: np.ndarray) -> Boundary | None:
        batch = np.concatenate([self._context, frame[None, :]], axis=1)
        prob, self._state_h, self._state_c = self.session.run(
            None, {"input": batch, "h": self._state_h, "c": self._state_c}
        )
        self._context = frame[None, -_CONTEXT:]
        self._ms += _FRAME_MS
        speech = float(np.asarray(prob).reshape(-1)[0]) >= self.config.threshold
        if not self.speaking:
            if speech:
                self.speaking, self._silence_ms = True, 0
                start = self._ms - _FRAME_MS - self.config.prefix_padding_ms
                # Padding never reaches back into the turn before.
                return Boundary("start", max(self._stopped_ms, start))
            return None
        if speech:
            paused, self._silence_ms = self._silence_ms >= self._pause_ms, 0
            return Boundary("resume", self._ms) if paused else None
        self._silence_ms += _FRAME_MS
        if self._silence_ms >= self.config.silence_duration_ms:
            self.speaking, self._stopped_ms = False, self._ms
            return Boundary("stop", self._ms)
        return Boundary("pause", self._ms) if self._silence_ms == self._pause_ms else None
