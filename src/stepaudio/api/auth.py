"""API keys: ``Authorization: Bearer KEY``, ``X-API-Key: KEY``, or the web page's session
cookie (``sessions.py``: a random id standing for a key's owner, never the key itself);
none configured → open.

The caller is identified by ``guard.GuardMiddleware`` (``identify``) before any body is
read; routes read the identity it left in the request's state through ``caller``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fastapi import Request
from pydantic import SecretStr

from stepaudio.api.sessions import SESSION_COOKIE, PageSessions
from stepaudio.errors import Unauthorized
from stepaudio.service.lifecycle import ANONYMOUS

SUBPROTOCOL_KEY = "openai-insecure-api-key."
"""How a browser, which cannot set headers on a WebSocket, sends a key: as a subprotocol
(OpenAI's Realtime convention)."""


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request's headers carry: Bearer token, ``X-API-Key``, or a WebSocket
    subprotocol ``openai-insecure-api-key.KEY``."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    if headers.get("x-api-key"):
        return headers["x-api-key"]
    for offered in headers.get("sec-websocket-protocol", "").split(","):
        if offered.strip().startswith(SUBPROTOCOL_KEY):
            return offered.strip()[len(SUBPROTOCOL_KEY) :] or None
    return None


@dataclass(frozen=True)
class Credentials:
    """Who a request comes from, and how to call the API again as them."""

    owner: str | None
    """The identity (None: no valid key or session)."""
    headers: dict[str, str] = field(default_factory=dict)
    """Headers that present the same credentials (the page's in-process API calls)."""


async def identify(
    keys: Sequence[SecretStr],
    sessions: PageSessions | None,
    headers: Mapping[str, str],
    cookies: Mapping[str, str],
) -> Credentials:
    """The caller of a request: a key in its headers, else the page's session cookie."""
    if not keys:
        return Credentials(ANONYMOUS)
    key = presented_key(headers)
    if key is not None:
        return Credentials(owner_of(keys, key), {"X-API-Key": key})
    session_id = cookies.get(SESSION_COOKIE)
    if session_id and sessions is not None:
        owner = await sessions.owner(session_id)
        return Credentials(owner, {"Cookie": f"{SESSION_COOKIE}={session_id}"})
    return Credentials(None)


def owner_of(keys: Sequence[SecretStr], key: str | None) -> str | None:
    """The identity a key stands for (a hash of it, never the key), or None if unknown.

    With no keys configured everyone is ``anonymous``. Compared as UTF-8 bytes in constant
    time: ``compare_digest`` refuses non-ASCII ``str``, and a header may carry any byte.
    ASGI servers hand header values over as Latin-1, so that gives back the bytes sent;
    keys are configured (and sent) as UTF-8."""
    if not keys:
        return ANONYMOUS
    if not key:
        return None
    try:
        given = key.encode("latin-1")
    except UnicodeEncodeError:  # not from a header: a form field or a test's str
        given = key.encode("utf-8", "surrogateescape")
    found = None
    for secret in keys:
        known = secret.get_secret_value()
        if hmac.compare_digest(given, known.encode()):
            found = known
    return None if found is None else "key-" + hashlib.sha256(found.encode()).hexdigest()[:16]


def unauthorized() -> Unauthorized:
    return Unauthorized("A valid API key is required (Authorization: Bearer KEY).")


def caller(request: Request) -> str:
    """The caller's identity, as the guard established it (or 401)."""
    who = getattr(request.state, "caller", None)
    if who is None:
        # Reached only when the guard is not installed (an app built by hand in a test).
        settings = request.app.state.services.settings
        who = owner_of(settings.api_keys, presented_key(request.headers))
    if who is None:
        raise unauthorized()
    return who
