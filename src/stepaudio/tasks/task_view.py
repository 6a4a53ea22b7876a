"""How a task looks from outside: the view ``GET /api/task/{id}`` answers and every
webhook delivery carries (so it lives here, below both the API and the outbox).

The original task API's keys (``task_id, status, created_at, params, result, error``)
plus ours. Times are ISO 8601 in UTC with an explicit ``+00:00``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, PlainSerializer

from stepaudio.tasks.records import TaskRecord
from stepaudio.tasks.status import TaskStatus

UtcTime = Annotated[datetime, PlainSerializer(lambda v: v.isoformat(), return_type=str)]


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


class TaskProgress(BaseModel):
    done: int
    """Windows finished."""
    total: int | None
    """Windows planned (None until the worker has planned them)."""


class TaskTimings(BaseModel):
    """Seconds spent waiting in the queue, processing, and in all (None until known)."""

    waiting: float | None
    processing: float | None
    total: float | None


class TaskWebhook(BaseModel):
    url: str
    state: str | None
    """pending, delivered or failed."""


class TaskSummary(BaseModel):
    """A task without its result (what ``GET /api/tasks`` lists)."""

    task_id: str
    status: TaskStatus
    created_at: UtcTime
    started_at: UtcTime | None
    finished_at: UtcTime | None
    params: dict[str, Any]
    filename: str
    progress: TaskProgress
    attempts: int
    timings: TaskTimings
    error: dict[str, Any] | None
    webhook: TaskWebhook | None

    @classmethod
    def from_record(cls, task: TaskRecord, **extra: Any) -> Self:
        return cls(
            task_id=task.task_id,
            status=task.status,
            created_at=_utc(task.created_at),
            started_at=_utc(task.started_at),
            finished_at=_utc(task.finished_at),
            params=task.params,
            filename=task.filename,
            progress=TaskProgress(done=task.progress_done, total=task.progress_total),
            attempts=task.attempts,
            timings=TaskTimings(
                waiting=_seconds(task.created_at, task.started_at),
                processing=_seconds(task.started_at, task.finished_at),
                total=_seconds(task.created_at, task.finished_at),
            ),
            error=task.error,
            webhook=TaskWebhook(url=task.webhook_url, state=task.webhook_state)
            if task.webhook_url
            else None,
            **extra,
        )


class TaskView(TaskSummary):
    """A task with its result (None until completed)."""

    result: dict[str, Any] | None

    @classmethod
    def from_record(cls, task: TaskRecord, **extra: Any) -> Self:
        return super().from_record(task, result=task.result, **extra)
