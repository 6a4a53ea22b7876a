"""Speaker diarization: error rate and CPU cost on conversations built from real clips.

Recordings: ``stepaudio.testing.speakers``' English (six voices, five of them twice) and
Mandarin (four voices, three twice) conversations, and the English one repeated to
about ten minutes. For each: the diarization error rate (missed + false alarm +
confusion over the reference speech, no collar; the reference is each clip's whole span,
so pauses inside clips count as "missed"), the share of covered speech given the right
speaker, the speakers found, and CPU seconds per audio minute (process CPU time of the
whole analysis: voice detection, features, CAM++, clustering).

The alternative in the same run: the same embeddings clustered by senko's own choice,
3D-Speaker's spectral clustering with senko's settings (its full pipeline cannot run on
this CPU: its filterbank library needs AVX-512 and dies with SIGILL). Then the start-up
costs that the service avoids until a request asks for speakers: importing torch, and
loading the models.

    .venv/bin/python -m bench.diarization
"""

from __future__ import annotations

import importlib.util
import json
import time
from typing import Any

import numpy as np
from rich.console import Console

from bench.common import DATA, machine, python_child, run_measured, show
from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.diarize.assign import Turn, label, turns
from stepaudio.diarize.cluster import speakers
from stepaudio.diarize.diarizer import Diarizer
from stepaudio.diarize.score import score
from stepaudio.testing.speakers import ENGLISH, MANDARIN, conversation

IMPORT_TORCH = """
import json, time
t = time.perf_counter()
import torch
print(json.dumps({"s": time.perf_counter() - t}))
"""

LOAD_MODELS = """
import json, time
t = time.perf_counter()
import stepaudio.api
light = time.perf_counter() - t
from stepaudio.diarize.embed import SpeakerModels
t = time.perf_counter()
SpeakerModels()._load()
print(json.dumps({"app_s": light, "models_s": time.perf_counter() - t}))
"""


def recordings() -> list[tuple[str, np.ndarray, list[Turn]]]:
    en, en_ref = conversation(ENGLISH, DATA)
    zh, zh_ref = conversation(MANDARIN, DATA)
    repeat = 8
    span = en.size / SAMPLE_RATE
    long = np.tile(en, repeat)
    long_ref = [
        Turn(t.start + i * span, t.end + i * span, t.speaker) for i in range(repeat) for t in en_ref
    ]
    return [
        ("en, 6 voices", en, en_ref),
        ("zh, 4 voices", zh, zh_ref),
        ("en, 6 voices, long", long, long_ref),
    ]


def spectral() -> Any:
    """senko's clustering class, loaded by path (its package import pulls its pipeline)."""
    spec = importlib.util.find_spec("senko")
    assert spec is not None and spec.origin is not None
    path = spec.origin.replace("__init__.py", "cluster/cluster_cpu.py")
    module_spec = importlib.util.spec_from_file_location("senko_cluster_cpu", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    # senko's conf/spectral.yaml
    return module.CommonClustering(
        cluster_type="spectral",
        mer_cos=0.875,
        min_num_spks=1,
        max_num_spks=15,
        min_cluster_size=4,
        pval=0.012,
    )


def main() -> None:
    console = Console()
    diarizer = Diarizer()
    diarizer.models._load()
    senko_spectral = spectral()
    rows = []
    for name, pcm, ref in recordings():
        minutes = pcm.size / SAMPLE_RATE / 60
        cpu = time.process_time()
        wins, emb = diarizer.windows(pcm)
        embed_cpu = time.process_time() - cpu
        owns = [w.owns for w in wins]
        for method, cluster in (
            ("ours: cosine average linkage", lambda e: speakers(e)),
            ("senko's spectral clustering", lambda e: np.asarray(senko_spectral(e.copy()))),
        ):
            cpu = time.process_time()
            found = cluster(emb)
            cluster_cpu = time.process_time() - cpu
            hyp = turns(owns, [label(int(i)) for i in found])
            s = score(ref, hyp)
            rows.append(
                [
                    name,
                    f"{minutes:.1f}",
                    method,
                    f"{s.speakers_found}/{s.speakers_expected}",
                    f"{100 * s.der:.1f}",
                    f"{100 * s.missed_s / s.reference_s:.1f}",
                    f"{100 * s.false_alarm_s / s.reference_s:.1f}",
                    f"{100 * s.confusion_s / s.reference_s:.1f}",
                    f"{100 * s.labelled_right:.1f}",
                    f"{(embed_cpu + cluster_cpu) / minutes:.1f}",
                    f"{cluster_cpu:.2f}",
                ]
            )
    print(f"Machine: {machine()}")
    show(
        console,
        "Diarization on built conversations (DER without collar)",
        [
            "recording",
            "min",
            "clustering",
            "speakers",
            "DER %",
            "missed %",
            "false alarm %",
            "confusion %",
            "labelled right %",
            "CPU s / audio min",
            "clustering CPU s",
        ],
        rows,
    )
    torch_s = json.loads(run_measured(python_child(IMPORT_TORCH)).stdout)["s"]
    load = json.loads(run_measured(python_child(LOAD_MODELS)).stdout)
    show(
        console,
        "Start-up costs (fresh interpreter)",
        ["step", "wall s"],
        [
            ["import stepaudio.api (no torch)", f"{load['app_s']:.2f}"],
            ["import torch", f"{torch_s:.2f}"],
            ["load models on first diarize (torch, silero-vad, CAM++)", f"{load['models_s']:.2f}"],
        ],
    )


if __name__ == "__main__":
    main()
