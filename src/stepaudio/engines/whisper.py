"""Whisper through faster-whisper, loaded once per process and shared by all requests."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stepaudio.engines.base import Segment
from stepaudio.engines.local_models import resolve_whisper
from stepaudio.errors import InvalidParameter, StepAudioError
from stepaudio.text import join_texts


@dataclass
class Transcript:
    segments: list[Segment]
    language: str | None

    @property
    def text(self) -> str:
        return join_texts(s.text for s in self.segments)


def _hallucinated(segment) -> bool:
    """Whisper's classic output on silence ("You", "Thank you."): its own no-speech
    detector is confident and the text is not. faster-whisper keeps such a segment unless
    the log-probability is below -1; requiring both signals keeps real, quiet speech."""
    return segment.no_speech_prob > 0.7 and segment.avg_logprob < -0.7


_SILENT_PEAK = 33
"""Peak below -60 dBFS (int16): no microphone recording of speech is this quiet."""


class WhisperTranscriber:
    """Thread-safe lazy holder of one ``WhisperModel``."""

    def __init__(
        self,
        model: str,
        data_dir: Path,
        *,
        compute_type: str = "int8",
        cpu_threads: int = 2,
        workers: int = 1,
        beam_size: int = 5,
    ):
        self._name = model
        self._data_dir = data_dir
        self._compute_type = compute_type
        self._cpu_threads = cpu_threads
        self._workers = workers
        self.beam_size = beam_size
        self._model = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    def model(self):
        with self._lock:
            if self._model is None:
                from faster_whisper import WhisperModel

                self._model = WhisperModel(
                    resolve_whisper(self._name, self._data_dir),
                    device="cpu",
                    compute_type=self._compute_type,
                    cpu_threads=self._cpu_threads,
                    num_workers=self._workers,
                )
            return self._model

    def transcribe(
        self, pcm: np.ndarray, *, language: str | None = None, task: str = "transcribe"
    ) -> Transcript:
        """Blocking: run in a worker thread. Times are relative to ``pcm``'s start."""
        if pcm.size == 0 or (pcm.max() < _SILENT_PEAK and pcm.min() > -_SILENT_PEAK):
            # Digital silence: Whisper's no-speech detector is not sure of it on every CPU
            # (0.68 here, 0.7+ elsewhere) and the words it then invents ("You") are not
            # reliably caught; nothing this quiet is speech.
            return Transcript([], language)
        audio = np.asarray(pcm, dtype=np.float32) / 32768.0
        try:
            segments, info = self.model().transcribe(
                audio, language=language, task=task, beam_size=self.beam_size
            )
            out = [
                Segment(
                    round(s.start, 3),
                    round(s.end, 3),
                    s.text.strip(),
                    seek=s.seek,
                    tokens=list(s.tokens),
                    temperature=s.temperature,
                    avg_logprob=s.avg_logprob,
                    compression_ratio=s.compression_ratio,
                    no_speech_prob=s.no_speech_prob,
                )
                for s in segments
                if not _hallucinated(s)
            ]
        except ValueError as exc:
            # faster-whisper raises ValueError for an unknown language code.
            raise InvalidParameter(str(exc), param="language") from exc
        except RuntimeError as exc:
            raise StepAudioError(f"Whisper failed: {exc}", code="whisper_error") from exc
        return Transcript([s for s in out if s.text], info.language)
