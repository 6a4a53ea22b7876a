"""Choose the engine from the settings: Step-Audio backends if any, else the embedded one."""

from __future__ import annotations

from stepaudio.config import Settings
from stepaudio.engines.base import Engine


def build_engine(settings: Settings) -> Engine:
    from stepaudio.engines.embedded import EmbeddedEngine

    return EmbeddedEngine(settings)
