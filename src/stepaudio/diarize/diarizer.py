"""A whole recording's speaker turns: speech, windows, embeddings, clustering.

Embedded and clustered over the whole recording at once, never window by window, so a
voice keeps its label across the pipeline's windows of long audio.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np

from stepaudio.diarize.assign import Turn, label, turns
from stepaudio.diarize.cluster import speakers
from stepaudio.diarize.embed import BLOCK_S, SAMPLE_RATE, SpeakerModels, Window, windows_of
from stepaudio.diarize.identify import match


class Stopped(Exception):
    """The analysis was stopped: its request was cancelled."""


class Diarizer:
    """Blocking: call from a worker thread, one recording at a time."""

    def __init__(self, threads: int = 1):
        self.models = SpeakerModels(threads)

    def windows(
        self, samples: np.ndarray, stop: threading.Event | None = None
    ) -> tuple[list[Window], np.ndarray]:
        """Every speech window of 16-kHz int16 (or float) ``samples``, in recording time,
        with its embedding; analysed in blocks so memory stays bounded. ``stop`` set:
        ``Stopped`` at the next block (a thread cannot be cancelled from outside)."""
        block = int(BLOCK_S * SAMPLE_RATE)
        found: list[Window] = []
        parts: list[np.ndarray] = []
        for a in range(0, len(samples), block):
            if stop is not None and stop.is_set():
                raise Stopped("speaker analysis stopped")
            chunk = np.asarray(samples[a : a + block])
            audio = chunk.astype(np.float32)
            if chunk.dtype == np.int16:
                audio /= 32768.0
            regions = self.models.speech(audio)
            wins = windows_of(regions, len(audio) / SAMPLE_RATE)
            parts.append(self.models.embed(audio, wins))
            off = a / SAMPLE_RATE
            found += [
                Window(w.start + off, w.end + off, (w.owns[0] + off, w.owns[1] + off)) for w in wins
            ]
        emb = np.concatenate(parts) if parts else np.zeros((0, 192), dtype=np.float32)
        return found, emb

    def voice(self, samples: np.ndarray) -> np.ndarray | None:
        """One unit vector for the voice of a reference clip (None: no speech in it)."""
        return self.voice_print(samples)[0]

    def voice_print(self, samples: np.ndarray) -> tuple[np.ndarray | None, float]:
        """The voice of a clip as one unit vector (None: no speech in it), and the seconds
        of speech it was made from."""
        wins, emb = self.windows(samples)
        if not len(emb):
            return None, 0.0
        mean = emb.mean(axis=0)
        speech = sum(w.owns[1] - w.owns[0] for w in wins)
        return mean / max(float(np.linalg.norm(mean)), 1e-8), float(speech)

    def __call__(
        self,
        samples: np.ndarray,
        *,
        num: int | None = None,
        low: int | None = None,
        high: int | None = None,
        known: dict[str, np.ndarray] | None = None,
        stop: threading.Event | None = None,
    ) -> list[Turn]:
        """Speaker turns; ``known`` (name: voice print, from ``voice`` or a library)
        names the speakers whose voice matches one (``identify.py``), with the score."""
        wins, emb = self.windows(samples, stop)
        found = speakers(emb, num=num, low=low, high=high)
        count = int(found.max()) + 1 if len(found) else 0
        names: list[str] = [label(i) for i in range(count)]
        scores: dict[str, float] = {}
        if known and count:
            centroids = np.stack([emb[found == i].mean(0) for i in range(count)])
            centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-8)
            matched = match(centroids, known)
            # Letters for the others, skipping none: a name is never a letter's twin.
            letters = iter(label(k) for k in range(count))
            names = [matched[i][0] if i in matched else next(letters) for i in range(count)]
            scores = {name: score for name, score in matched.values()}
        return [
            replace(t, score=scores.get(t.speaker))
            for t in turns([w.owns for w in wins], [names[int(i)] for i in found])
        ]
