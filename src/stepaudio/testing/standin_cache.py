"""The stand-in's ears: one embedded Whisper per process, its transcripts cached."""

from __future__ import annotations

import functools
import hashlib
import threading
from pathlib import Path

import numpy as np

from stepaudio.config import WhisperSettings
from stepaudio.engines.chinese_script import SIMPLIFIED, in_script
from stepaudio.engines.whisper import WhisperTranscriber
from stepaudio.text import join_texts


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
                text = result.text
                if result.language == "zh":
                    # Step-Audio writes Mandarin in Simplified characters with Chinese
                    # punctuation, as the embedded engine now does.
                    text = join_texts(s.text for s in in_script(result.segments, SIMPLIFIED))
                self._cache[key] = (text, result.language)
            return self._cache[key]


@functools.cache
def shared_transcriber(models_dir: Path) -> CachedTranscriber:
    """One embedded Whisper per process for all stand-ins (loading it costs memory),
    decoding as the embedded engine does by default, so the two can be compared."""
    defaults = WhisperSettings()
    return CachedTranscriber(
        WhisperTranscriber(
            "base",
            models_dir,
            beam_size=defaults.beam_size,
            batch_size=defaults.batch_size,
            chinese_compute_type=defaults.chinese_compute_type,
        )
    )
