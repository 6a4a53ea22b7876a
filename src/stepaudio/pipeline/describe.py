"""What a recording would cost to process: the body of ``/api/audio/info`` and ``info``."""

from __future__ import annotations

import math
from typing import Any

from stepaudio.audio.probe import AudioInfo
from stepaudio.engines.base import Engine
from stepaudio.engines.stepaudio.wire import TOKENS_PER_SECOND
from stepaudio.params import Mode, ProcessParams
from stepaudio.pipeline.run import window_mode


def audio_report(info: AudioInfo, engine: Engine) -> dict[str, Any]:
    windows = {}
    for mode in Mode:
        longest = engine.max_window_seconds(window_mode(mode, engine), ProcessParams(mode=mode))
        windows[mode.value] = max(1, math.ceil(info.duration / longest))
    summarize = ProcessParams(mode=Mode.SUMMARIZE)
    return {
        **info.to_dict(),
        "estimated_audio_tokens": math.ceil(info.duration * TOKENS_PER_SECOND),
        "max_audio_seconds_per_request": round(
            engine.max_window_seconds(Mode.SUMMARIZE, summarize), 1
        ),
        "windows": windows[Mode.S2T.value],
        "windows_by_mode": windows,
        "engine": engine.name,
    }
