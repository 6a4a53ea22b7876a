"""Where to cut a long recording: at the quietest moment near each limit.

Cutting in a pause means no word is split between two parts, so parts can be transcribed
independently and joined without overlap or loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_FRAME_S = 0.02
_SMOOTH_FRAMES = 10  # 200 ms: a real pause, not the gap inside a plosive


@dataclass(frozen=True)
class Span:
    """A stretch of the recording, in seconds from its start."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def quietest_point(samples: np.ndarray, rate: int) -> float:
    """Offset in seconds (within ``samples``) of the centre of the quietest 200 ms."""
    frame = max(1, int(rate * _FRAME_S))
    n_frames = samples.size // frame
    if n_frames <= _SMOOTH_FRAMES:
        return samples.size / rate / 2
    frames = np.asarray(samples[: n_frames * frame], dtype=np.float32).reshape(n_frames, frame)
    energy = np.einsum("ij,ij->i", frames, frames)
    smooth = np.convolve(energy, np.ones(_SMOOTH_FRAMES, dtype=np.float32), mode="valid")
    best = int(np.argmin(smooth))
    return (best + _SMOOTH_FRAMES / 2) * frame / rate


def plan_cuts(
    samples: np.ndarray, rate: int, max_len: float, search: float | None = None
) -> list[Span]:
    """Split ``samples`` into spans of at most ``max_len`` seconds, cut at quiet points.

    Each cut is looked for in the last ``search`` seconds before the limit (a fifth of
    ``max_len`` by default), so spans stay close to ``max_len`` and never exceed it.
    """
    if max_len <= 0:
        raise ValueError("max_len must be positive")
    total = samples.size / rate
    search = min(search if search is not None else max_len / 5, max_len / 2)
    spans: list[Span] = []
    start = 0.0
    while total - start > max_len:
        lo = start + max_len - search
        region = samples[round(lo * rate) : round((start + max_len) * rate)]
        cut = lo + quietest_point(region, rate)
        cut = min(max(cut, start + 0.1), start + max_len)
        spans.append(Span(round(start, 3), round(cut, 3)))
        start = round(cut, 3)
    if total - start > 0 or not spans:
        spans.append(Span(round(start, 3), round(total, 3)))
    return spans
