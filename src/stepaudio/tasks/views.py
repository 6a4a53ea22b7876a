"""How tasks look from outside: the API's view of a task row, and the fingerprint of
what a request asked for."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any


def _iso(value: datetime | None) -> str | None:
    return value.replace(tzinfo=UTC).isoformat() if value else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def task_view(row: Any, *, with_result: bool = True) -> dict[str, Any]:
    """A task as the API shows it: the seed's keys plus ours."""
    view: dict[str, Any] = {
        "task_id": row.id,
        "status": row.status,
        "created_at": _iso(row.created_at),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "params": row.params,
        "filename": row.filename,
        "progress": {"done": row.progress_done, "total": row.progress_total},
        "attempts": row.attempts,
        "timings": {
            "waiting": _seconds(row.created_at, row.started_at),
            "processing": _seconds(row.started_at, row.finished_at),
            "total": _seconds(row.created_at, row.finished_at),
        },
        "error": row.error,
        "webhook": {"url": row.webhook_url, "state": row.webhook_state}
        if row.webhook_url
        else None,
    }
    if with_result:
        view["result"] = row.result
    return view


def request_hash(params: dict[str, Any], sha256: str, webhook_url: str | None) -> str:
    """What an idempotent request asked for, as one comparable value."""
    asked = {"params": params, "upload": sha256, "webhook_url": webhook_url}
    return hashlib.sha256(json.dumps(asked, sort_keys=True, default=str).encode()).hexdigest()
