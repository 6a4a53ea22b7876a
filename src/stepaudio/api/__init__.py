"""The HTTP face: the seed's /api endpoints, health, metrics, and the OpenAI-compatible /v1."""

from stepaudio.api.app import create_app

__all__ = ["create_app"]
