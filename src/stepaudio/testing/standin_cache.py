"""The stand-in's ears: one embedded Whisper per process, its transcripts cached."""

from __future__ import annotations

import functools
import hashlib
import threading
from pathlib import Path

import numpy as np

from stepaudio.engines.whisper import WhisperTranscriber


class CachedTranscriber:
    """Whisper behind a lock and a cache of finished transcripts, shared by stand-ins.

    Tests send the same clip many times at once; transcribing it once (the others wait
    for that result) keeps a 2-core machine from running eight identical Whispers."""

    def __init__(self, whisper: WhisperTranscriber):
        self.whisper = whisper
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[str, str | None]] = {}

    def transcribe(self, pcm: np.ndarray, task: str) -> tuple[str, str | None]:
        """Blocking: (text, language) of ``pcm``."""
        key = (hashlib.sha1(pcm.tobytes()).hexdigest(), task)
        with self._lock:
            if key not in self._cache:
                result = self.whisper.transcribe(pcm, task=task)
                self._cache[key] = (result.text, result.language)
            return self._cache[key]


@functools.cache
def shared_transcriber(data_dir: Path) -> CachedTranscriber:
    """One embedded Whisper per process for all stand-ins (loading it costs memory)."""
    return CachedTranscriber(WhisperTranscriber("base", data_dir))
