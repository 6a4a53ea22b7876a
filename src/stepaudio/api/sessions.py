"""The web page's logins, as the API sees them: a session id in a cookie stands for the
owner of the key typed at login (``tasks/sessions.py`` keeps them in the database).

Looked up on every request of the page (assets, events, heartbeats), so a live answer is
kept for ``CACHE_S`` in this process: a logout on another gateway sharing the database
takes effect here within that time; a logout here takes effect at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from stepaudio.tasks.async_store import AsyncTaskStore
from stepaudio.tasks.sessions import create_session, revoke_session, session_owner

SESSION_COOKIE = "stepaudio_session"
"""The login cookie (HttpOnly, SameSite=Strict): a random id, never the key."""
CACHE_S = 5.0
_CACHE_MAX = 10_000


class PageSessions:
    """Create, look up and revoke page sessions; one per app."""

    def __init__(self, store: Callable[[], AsyncTaskStore | None], ttl_s: float):
        self._store = store
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[str, float]] = {}

    def _open_store(self) -> AsyncTaskStore:
        store = self._store()
        if store is None:
            raise RuntimeError("the task store is not open (the app has not started)")
        return store

    async def create(self, owner: str) -> str:
        store = self._open_store()
        return await store.call(create_session, store.sync, owner, self.ttl_s)

    async def owner(self, session_id: str) -> str | None:
        now = time.monotonic()
        cached = self._cache.get(session_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        store = self._store()
        if store is None:
            return None
        owner = await store.call(session_owner, store.sync, session_id)
        if owner is None:
            self._cache.pop(session_id, None)
            return None
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[session_id] = (owner, now + CACHE_S)
        return owner

    async def revoke(self, session_id: str) -> None:
        self._cache.pop(session_id, None)
        store = self._open_store()
        await store.call(revoke_session, store.sync, session_id)
