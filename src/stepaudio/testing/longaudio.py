"""Long recordings built from short real clips, with silences between, in a known order.

Where each clip starts is recorded, so a long transcript can be checked clip by clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stepaudio.audio.decode import SAMPLE_RATE, iter_pcm


@dataclass(frozen=True)
class Placement:
    source: Path
    start: float
    end: float


def load_pcm(path: Path) -> np.ndarray:
    return np.concatenate(list(iter_pcm(path)))


def build(
    clips: Sequence[Path], min_seconds: float, gap_s: float = 1.5
) -> tuple[np.ndarray, list[Placement]]:
    """Repeat ``clips`` in order, ``gap_s`` of silence between, until ``min_seconds``."""
    decoded = [(c, load_pcm(c)) for c in clips]
    gap = np.zeros(int(gap_s * SAMPLE_RATE), dtype=np.int16)
    parts: list[np.ndarray] = []
    placements: list[Placement] = []
    at = 0
    while at < min_seconds * SAMPLE_RATE:
        for path, pcm in decoded:
            placements.append(Placement(path, at / SAMPLE_RATE, (at + pcm.size) / SAMPLE_RATE))
            parts += [pcm, gap]
            at += pcm.size + gap.size
            if at >= min_seconds * SAMPLE_RATE:
                break
    return np.concatenate(parts), placements
