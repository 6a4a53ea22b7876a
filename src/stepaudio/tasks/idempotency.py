"""``Idempotency-Key``: the same key and request give the same task; the same key with
another request is a conflict, not the old task."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Connection, select

from stepaudio.errors import Conflict
from stepaudio.tasks.models import Task
from stepaudio.tasks.records import TaskRecord


def request_hash(params: dict[str, Any], sha256: str, webhook_url: str | None) -> str:
    """What an idempotent request asked for, as one comparable value."""
    asked = {"params": params, "upload": sha256, "webhook_url": webhook_url}
    return hashlib.sha256(json.dumps(asked, sort_keys=True, default=str).encode()).hexdigest()


def replay(conn: Connection, owner: str, key: str | None, fingerprint: str) -> TaskRecord | None:
    """The task this key already made for this request; None if the key is new (or
    absent); ``Conflict`` if it was used for another request."""
    if key is None:
        return None
    existing = conn.execute(
        select(Task).where(Task.owner == owner, Task.idempotency_key == key)
    ).first()
    if existing is None:
        return None
    if existing.request_hash not in (None, fingerprint):
        raise Conflict(
            "This Idempotency-Key was already used for a different request (other "
            "parameters or another file); use a new key.",
            param="Idempotency-Key",
            code="idempotency_key_reused",
        )
    return TaskRecord.from_row(existing)
