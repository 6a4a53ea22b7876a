"""API keys: ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``; none configured → open."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Depends, Request

from stepaudio.api.services import Services, get_services
from stepaudio.errors import Unauthorized

ANONYMOUS = "anonymous"


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def caller(request: Request, services: Services = Depends(get_services)) -> str:
    """The caller's identity (its key's owner name), or 401."""
    keys = services.settings.api_keys
    if not keys:
        return ANONYMOUS
    key = presented_key(request)
    if key:
        for known in keys:
            if hmac.compare_digest(key, known):
                return "key-" + hashlib.sha256(known.encode()).hexdigest()[:16]
    raise Unauthorized("A valid API key is required (Authorization: Bearer KEY).")
