"""What a worker's hold on a task is: a claim (its lease token) and the SQL conditions
that say whether a task may be claimed and whether a claim still holds it.

Every write a worker makes after claiming (heartbeat, progress, window, result) is a
conditional UPDATE on its token, so a worker that lost its lease (it stalled, or the task
was cancelled or taken again) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from stepaudio.tasks.models import Task
from stepaudio.tasks.status import TaskStatus


class LeaseLost(Exception):
    """This worker no longer holds the task (cancelled, or claimed again elsewhere)."""


@dataclass(frozen=True)
class Claim:
    task_id: str
    token: str
    attempt: int
    params: dict[str, Any]
    upload_sha256: str
    filename: str
    owner: str = ""
    """The key's owner: its voice library names the speakers (``voices``)."""


def claimable(now: datetime) -> ColumnElement[bool]:
    """Pending and past its backoff, or processing under a lease that expired."""
    return or_(
        and_(Task.status == TaskStatus.PENDING, Task.run_after <= now),
        and_(Task.status == TaskStatus.PROCESSING, Task.lease_until < now),
    )


def held(claim: Claim) -> ColumnElement[bool]:
    """The task is still processing under this claim's token."""
    return and_(
        Task.id == claim.task_id,
        Task.lease_token == claim.token,
        Task.status == TaskStatus.PROCESSING,
    )
