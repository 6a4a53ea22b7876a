"""Draft decoding: Whisper's encoder reads the speech and a few seconds of the padding,
not all 30 s of it.

Whisper always encodes 30 s; a 4 s turn is mostly zeros to it, and on a CPU the encoder is
most of a short call (0.6 s of 0.8 s for Whisper base on 2 cores). CTranslate2 takes a
shorter input, and with at least 10 s of it (the speech plus 3 s) Whisper base scored the
same on the shared English turns (WER 6.7 %) in half the time, but 4 CER points worse on
Mandarin (bench/realtime_latency.py's notes, docs/live.md). So live turns use it (their
partials, and their final texts, where a second saved is what keeps a conversation's
captions in step), never Mandarin, and nothing of a file does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import numpy as np
from faster_whisper import WhisperModel

MIN_FRAMES = 1000
"""Shortest encoder input (10 s of 10 ms frames): shorter, Whisper base loses its way
(35 % WER on the shared English turns with 1 s past the speech)."""
MARGIN_FRAMES = 300
"""Padding kept after the speech (3 s)."""

DRAFT_BEAM = 1
"""A draft is decoded greedily (the beam the caller asked for otherwise)."""

_DRAFT: ContextVar[bool] = ContextVar("whisper_draft", default=False)


def is_drafting() -> bool:
    return _DRAFT.get()


@contextlib.contextmanager
def drafting(on: bool = True) -> Iterator[None]:
    """Within this block (in this thread), encode drafts."""
    token = _DRAFT.set(on)
    try:
        yield
    finally:
        _DRAFT.reset(token)


def trimmed(features: np.ndarray) -> np.ndarray:
    """``features`` (mels × frames, or a batch of them) cut after the speech's last frame
    plus the margin, to no fewer than ``MIN_FRAMES``. faster-whisper pads a segment to 30 s
    with exact zeros (``pad_or_trim``), which a spoken frame never is in all its mels."""
    spoken = np.flatnonzero(np.any(features != 0, axis=tuple(range(features.ndim - 1))))
    end = int(spoken[-1]) + 1 if spoken.size else 0
    keep = max(MIN_FRAMES, end + MARGIN_FRAMES)
    return features[..., :keep] if keep < features.shape[-1] else features


class DraftableWhisper(WhisperModel):
    """faster-whisper's model, whose encoder reads less padding inside ``drafting()``."""

    def encode(self, features: np.ndarray):
        if _DRAFT.get():
            features = trimmed(features)
        return super().encode(features)
