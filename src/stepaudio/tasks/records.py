"""A task as the store hands it out: a typed, read-only copy of its row (the API and the
webhooks turn it into their view, ``tasks/task_view.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stepaudio.tasks.status import TaskStatus


@dataclass(frozen=True)
class TaskRecord:
    task_id: str
    owner: str
    status: TaskStatus
    params: dict[str, Any]
    filename: str
    progress_done: int
    progress_total: int | None
    attempts: int
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    """The final error, or the last attempt's while a retry waits."""
    webhook_url: str | None
    webhook_state: str | None
    created_at: datetime
    """Naive UTC, like every time in the database."""
    started_at: datetime | None
    finished_at: datetime | None
    upload_sha256: str = ""
    """The stored upload (kept while a task uses it): where a finished task's audio is
    read again (a speaker of it enrolled in the voice library)."""

    @classmethod
    def from_row(cls, row: Any) -> TaskRecord:
        """From a ``select(Task)`` row."""
        return cls(
            task_id=row.id,
            owner=row.owner,
            status=TaskStatus(row.status),
            params=row.params,
            filename=row.filename,
            progress_done=row.progress_done,
            progress_total=row.progress_total,
            attempts=row.attempts,
            result=row.result,
            error=row.error,
            webhook_url=row.webhook_url,
            webhook_state=row.webhook_state,
            created_at=row.created_at,
            started_at=row.started_at,
            upload_sha256=row.upload_sha256,
            finished_at=row.finished_at,
        )
