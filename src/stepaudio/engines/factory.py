"""Choose the engine from the settings: Step-Audio backends if any, else a remote cascade
(OpenAI transcription server + chat server) if one is set, else the embedded one."""

from __future__ import annotations

from stepaudio.config import Settings
from stepaudio.engines.base import Engine


def build_engine(settings: Settings) -> Engine:
    if settings.all_backends():
        from stepaudio.engines.pool import BackendPool

        return BackendPool.from_settings(settings)
    if settings.transcription_url:
        from stepaudio.engines.cascade import CascadeEngine

        return CascadeEngine(settings)
    from stepaudio.engines.embedded import EmbeddedEngine

    return EmbeddedEngine.from_settings(settings)
