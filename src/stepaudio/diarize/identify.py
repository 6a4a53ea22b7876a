"""Known speakers: which voice found in a recording is which enrolled voice, if any.

Open-set: a found voice gets an enrolled name only when their prints are at least
``MATCH_THRESHOLD`` alike (cosine of CAM++ embeddings), and one to one (Hungarian
assignment: two found voices never share a name, and one name never goes to two). The
threshold comes from ``bench/speaker_id.py`` on tests/data's utterances: same-speaker
pairs scored 0.72–0.95, different speakers 0.27–0.54 (no overlap: equal error rate 0);
0.63 sits in the middle of the gap. The clustering's 0.5, used for this before, gave a
colleague's name to a stranger 9 % of the time on the same pairs (JFK got the Mandarin
reader's at 0.53). The score is returned with the name, so a client can be stricter.
"""

from __future__ import annotations

import importlib

import numpy as np

MATCH_THRESHOLD = 0.63


def match(
    centroids: np.ndarray, known: dict[str, np.ndarray], threshold: float = MATCH_THRESHOLD
) -> dict[int, tuple[str, float]]:
    """For found voices (rows of unit ``centroids``), the enrolled name and score of those
    that match one: ``{row: (name, cosine)}``."""
    if not known or not len(centroids):
        return {}
    optimize = importlib.import_module("scipy.optimize")
    names = list(known)
    prints = np.stack([known[n] / max(float(np.linalg.norm(known[n])), 1e-8) for n in names])
    similarity = centroids @ prints.T
    return {
        int(i): (names[j], float(similarity[i, j]))
        for i, j in zip(*optimize.linear_sum_assignment(-similarity), strict=True)
        if similarity[i, j] >= threshold
    }
