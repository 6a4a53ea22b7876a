"""Web page sessions in the task database: created at login, looked up on each request
of the page, revoked at logout, gone when they expire.

The cookie carries a random 256-bit id; the row holds its SHA-256 and the owner (the
identity the API gives the key, never the key). Every gateway sharing the database knows
every session, and a logout on one ends it on all.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, insert, select

from stepaudio.tasks.db import read_transaction, transaction
from stepaudio.tasks.models import PageSession, utcnow
from stepaudio.tasks.store import TaskStore


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).hexdigest()


def create_session(store: TaskStore, owner: str, ttl_s: float) -> str:
    """A new session for ``owner``; its id (for the cookie). Expired rows go on the way."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    with transaction(store.engine) as conn:
        conn.execute(delete(PageSession).where(PageSession.expires_at <= now))
        conn.execute(
            insert(PageSession).values(
                id_sha256=_digest(session_id),
                owner=owner,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl_s),
            )
        )
    return session_id


def session_owner(store: TaskStore, session_id: str) -> str | None:
    """The owner of a live session, else None (unknown, revoked or expired)."""
    if not session_id or len(session_id) > 128:
        return None
    with read_transaction(store.engine) as conn:
        row = conn.execute(
            select(PageSession.owner, PageSession.expires_at).where(
                PageSession.id_sha256 == _digest(session_id)
            )
        ).first()
    if row is None or row.expires_at <= utcnow():
        return None
    return str(row.owner)


def revoke_session(store: TaskStore, session_id: str) -> None:
    with transaction(store.engine) as conn:
        conn.execute(delete(PageSession).where(PageSession.id_sha256 == _digest(session_id)))
