"""Choose the engine from the settings: ``engine`` names it; ``auto`` takes the Step-Audio
backends if any, else a remote cascade (OpenAI transcription server + chat server) if
one is set, else the embedded one."""

from __future__ import annotations

from stepaudio.config import Settings
from stepaudio.engines.base import Engine
from stepaudio.errors import InvalidParameter


def engine_kind(settings: Settings) -> str:
    """The engine the settings ask for, ``auto`` resolved."""
    if settings.engine != "auto":
        return settings.engine
    if settings.all_backends():
        return "stepaudio"
    if settings.cascade.transcription_url:
        return "cascade"
    return "embedded"


def build_engine(settings: Settings) -> Engine:
    kind = engine_kind(settings)
    if kind == "stepaudio":
        if not settings.all_backends():
            raise InvalidParameter(
                "engine is stepaudio but no backend is set (backends or VLLM_API_URL).",
                param="backends",
            )
        from stepaudio.engines.pool import BackendPool

        return BackendPool.from_settings(settings)
    if kind == "cascade":
        from stepaudio.engines.cascade import CascadeEngine

        return CascadeEngine(settings)
    from stepaudio.engines.embedded import EmbeddedEngine

    return EmbeddedEngine.from_settings(settings)
