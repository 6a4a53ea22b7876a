"""Live audio: a stream of PCM cut into turns (``vad``), each turn transcribed while it
is spoken, with append-only partials and a final text (``turns``, ``session``). No
transport here: the realtime WebSocket face and Wyoming turn their events into these
calls and these events into their own."""

from stepaudio.live.session import (
    Cleared,
    Committed,
    Completed,
    Delta,
    Failed,
    LiveEvent,
    LiveSession,
    SpeechStarted,
    SpeechStopped,
)
from stepaudio.live.vad import StreamingVad, VadConfig

__all__ = [
    "Cleared",
    "Committed",
    "Completed",
    "Delta",
    "Failed",
    "LiveEvent",
    "LiveSession",
    "SpeechStarted",
    "SpeechStopped",
    "StreamingVad",
    "VadConfig",
]
