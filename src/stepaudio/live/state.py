"""What the live sessions of one service share."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from stepaudio.config import LiveSettings
from stepaudio.service import Admission


@dataclass
class LiveState:
    sessions: Admission
    """One place per open session, per key and in all."""
    partials: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Partial transcripts are a courtesy: one at a time in the whole service, and a
    session finding one running skips its own (final texts never wait for partials)."""

    @classmethod
    def from_settings(cls, live: LiveSettings) -> LiveState:
        return cls(Admission(live.max_sessions, live.max_sessions_per_key))
