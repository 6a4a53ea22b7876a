"""A task's life: pending → processing → completed, failed or cancelled (a failed attempt
with retries left goes back to pending)."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    """Stored and shown as the plain value (``"pending"``...): a ``str``, so JSON, SQL and
    comparisons with the strings clients send need no conversion."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)
UNFINISHED = (TaskStatus.PENDING, TaskStatus.PROCESSING)
"""What a key holds right now (counted by its quotas); a worker may still change it."""
