"""How right a diarization is against known speakers (for tests and the benchmark).

The reference is where each speaker's clip lies in a built recording. Hypothesis labels
are matched to reference speakers one to one (the pairing that agrees longest), as the
diarization error rate (DER) defines it; no collar.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from stepaudio.diarize.assign import Turn

STEP = 0.01
"""Resolution of the time grid the rates are counted on (seconds)."""


@dataclass(frozen=True)
class Score:
    reference_s: float
    """Speech time in the reference."""
    missed_s: float
    false_alarm_s: float
    confusion_s: float
    speakers_found: int
    speakers_expected: int

    @property
    def der(self) -> float:
        return (self.missed_s + self.false_alarm_s + self.confusion_s) / self.reference_s

    @property
    def labelled_right(self) -> float:
        """Of the reference speech the diarization covered, the share given the right
        speaker."""
        covered = self.reference_s - self.missed_s
        return 1.0 - self.confusion_s / covered if covered else 0.0


def _grid(turns: list[Turn], names: list[str], length: int) -> np.ndarray:
    grid = np.full(length, -1, dtype=int)
    for t in turns:
        grid[int(round(t.start / STEP)) : int(round(t.end / STEP))] = names.index(t.speaker)
    return grid


def score(reference: list[Turn], hypothesis: list[Turn]) -> Score:
    """Missed, false-alarm and confused speech of ``hypothesis`` against ``reference``
    (one speaker at a time in both)."""
    end = max([t.end for t in reference + hypothesis] + [0.0])
    length = int(round(end / STEP)) + 1
    ref_names = sorted({t.speaker for t in reference})
    hyp_names = sorted({t.speaker for t in hypothesis})
    ref = _grid(reference, ref_names, length)
    hyp = _grid(hypothesis, hyp_names, length)
    both = (ref >= 0) & (hyp >= 0)
    agree = np.zeros((len(ref_names), max(len(hyp_names), 1)))
    np.add.at(agree, (ref[both], hyp[both]), 1)
    optimize = importlib.import_module("scipy.optimize")
    rows, cols = optimize.linear_sum_assignment(-agree)
    matched = agree[rows, cols].sum()
    return Score(
        reference_s=float((ref >= 0).sum() * STEP),
        missed_s=float(((ref >= 0) & (hyp < 0)).sum() * STEP),
        false_alarm_s=float(((ref < 0) & (hyp >= 0)).sum() * STEP),
        confusion_s=float((both.sum() - matched) * STEP),
        speakers_found=len(hyp_names),
        speakers_expected=len(ref_names),
    )
