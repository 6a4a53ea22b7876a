"""A whole recording's speaker turns: speech, windows, embeddings, clustering.

Embedded and clustered over the whole recording at once, never window by window, so a
voice keeps its label across the pipeline's windows of long audio.
"""

from __future__ import annotations

import importlib
import threading

import numpy as np

from stepaudio.diarize.assign import Turn, label, turns
from stepaudio.diarize.cluster import THRESHOLD, speakers
from stepaudio.diarize.embed import BLOCK_S, SAMPLE_RATE, SpeakerModels, Window, windows_of


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
        _, emb = self.windows(samples)
        if not len(emb):
            return None
        mean = emb.mean(axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-8)

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
        """Speaker turns; ``known`` (name: reference voice from ``voice``) names the
        speakers whose voice matches one."""
        wins, emb = self.windows(samples, stop)
        found = speakers(emb, num=num, low=low, high=high)
        names = [label(i) for i in range(int(found.max()) + 1)] if len(found) else []
        if known:
            names = _named(emb, found, names, known)
        return turns([w.owns for w in wins], [names[int(i)] for i in found])


def _named(
    emb: np.ndarray, found: np.ndarray, names: list[str], known: dict[str, np.ndarray]
) -> list[str]:
    """Each found speaker matched one to one with the reference voice it is closest to,
    if close enough to be the same voice; the others keep letters (unused by names)."""
    optimize = importlib.import_module("scipy.optimize")
    centroids = np.stack([emb[found == i].mean(0) for i in range(len(names))])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-8)
    refs = list(known)
    similarity = centroids @ np.stack([known[r] for r in refs]).T
    out = list(names)
    for i, j in zip(*optimize.linear_sum_assignment(-similarity), strict=True):
        if similarity[i, j] >= 1.0 - THRESHOLD:
            out[i] = refs[j]
    taken = set(out) & set(refs)
    letters = (label(k) for k in range(len(names) + len(refs)))
    return [n if n in taken else next(x for x in letters if x not in taken) for n in out]
