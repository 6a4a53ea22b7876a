"""Voice matching, calibrated: how alike two utterances of one speaker are, and two of
different speakers, by the service's own voice prints (CAM++ through ``Diarizer.voice``).

Utterances: ``stepaudio.testing.speakers.UTTERANCES`` (tests/data's clips, cut where a
reader has one long recording: the sonnets' reader, JFK, two LibriSpeech halves, the
Sense and Sensibility reader, AISHELL's S0764 in two clips, and single voices). For every
pair: the cosine of their prints. Printed: both score distributions, the equal error rate
and its threshold, and the false-accept / false-reject rates of the threshold the service
uses (``stepaudio.diarize.identify.MATCH_THRESHOLD``) beside the old one (the clustering's 0.5).

    .venv/bin/python -m bench.speaker_id
"""

from __future__ import annotations

import itertools
import time

import numpy as np
from rich.console import Console

from bench.common import DATA, machine, show
from stepaudio.diarize.diarizer import Diarizer
from stepaudio.testing.speakers import UTTERANCES, utterance


def prints() -> tuple[list[str], np.ndarray, float]:
    diarizer = Diarizer()
    names, rows = [], []
    started = time.perf_counter()
    for line in UTTERANCES:
        voice = diarizer.voice(utterance(line, DATA))
        if voice is not None:
            names.append(line.speaker)
            rows.append(voice)
    return names, np.stack(rows), (time.perf_counter() - started) / len(rows)


def pair_scores(names: list[str], emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    same, other = [], []
    for i, j in itertools.combinations(range(len(names)), 2):
        score = float(emb[i] @ emb[j])
        (same if names[i] == names[j] else other).append(score)
    return np.array(same), np.array(other)


def rates(same: np.ndarray, other: np.ndarray, threshold: float) -> tuple[float, float]:
    """False accepts (different speakers at or above) and false rejects (same below)."""
    return float(np.mean(other >= threshold)), float(np.mean(same < threshold))


def equal_error(same: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    candidates = np.unique(np.concatenate([same, other]))
    best = min(candidates, key=lambda t: abs(np.subtract(*rates(same, other, t))))
    far, frr = rates(same, other, best)
    return float(best), (far + frr) / 2


def main() -> None:
    from stepaudio.diarize.identify import MATCH_THRESHOLD

    console = Console()
    names, emb, per_print = prints()
    same, other = pair_scores(names, emb)
    eer_at, eer = equal_error(same, other)
    show(
        console,
        f"Voice prints of {len(names)} utterances by {len(set(names))} speakers ({machine()})",
        ["pairs", "n", "min", "p5", "median", "p95", "max"],
        [
            [kind, len(v), *(f"{x:.3f}" for x in np.percentile(v, [0, 5, 50, 95, 100]))]
            for kind, v in (("same speaker", same), ("different speakers", other))
        ],
    )
    rows = []
    for label, t in (
        ("equal error rate", eer_at),
        ("the service's threshold", MATCH_THRESHOLD),
        ("the clustering's (used before)", 0.5),
    ):
        far, frr = rates(same, other, t)
        rows.append([label, f"{t:.3f}", f"{100 * far:.1f}", f"{100 * frr:.1f}"])
    show(console, "Thresholds", ["", "cosine", "false accept %", "false reject %"], rows)
    print(f"equal error rate: {100 * eer:.1f} % at {eer_at:.3f}; one print: {per_print:.2f} s")


if __name__ == "__main__":
    main()
