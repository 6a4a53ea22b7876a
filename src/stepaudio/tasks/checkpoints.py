"""Checkpoints: each finished window's output, kept in ``task_windows`` so that a task
taken again after a crash loads them instead of redoing them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, select
from sqlalchemy import insert as sql_insert
from sqlalchemy import update as sql_update

from stepaudio.audio.cut import Span
from stepaudio.engines.base import ModelOutput
from stepaudio.tasks.db import read_transaction, transaction
from stepaudio.tasks.lease import Claim, LeaseLost, held
from stepaudio.tasks.models import Task, TaskWindow, utcnow
from stepaudio.tasks.serialization import output_from_json, output_to_json


@dataclass(frozen=True)
class WindowRecord:
    """A finished window's bookkeeping (not its output)."""

    index: int
    attempt: int
    """The task attempt that computed it."""
    computations: int
    """How many times it was computed: more than 1 means work was redone."""
    computed_at: datetime


def _same_span(saved: list[float] | None, span: Span | None) -> bool:
    if span is None or saved is None:
        return span is None and saved is None
    return abs(saved[0] - span.start) < 1e-3 and abs(saved[1] - span.end) < 1e-3


def load(engine: Engine, task_id: str, index: int, span: Span | None = None) -> ModelOutput | None:
    """A finished window's output; None if absent or saved for another ``span`` (the
    windows were planned differently this time)."""
    with read_transaction(engine) as conn:
        data = conn.execute(
            select(TaskWindow.output).where(
                TaskWindow.task_id == task_id, TaskWindow.index == index
            )
        ).scalar()
    if data is None or not _same_span(data.get("span"), span):
        return None
    return output_from_json(data)


def save(
    engine: Engine, claim: Claim, index: int, output: ModelOutput, span: Span | None = None
) -> None:
    """Keep a finished window; raises LeaseLost if this worker no longer holds the task."""
    data, now = output_to_json(output), utcnow()
    if span is not None:
        data["span"] = [span.start, span.end]
    with transaction(engine) as conn:
        # Lock the task row (PostgreSQL) so the lease cannot change under us.
        if conn.execute(select(Task.id).where(held(claim)).with_for_update()).first() is None:
            raise LeaseLost(claim.task_id)
        key = and_(TaskWindow.task_id == claim.task_id, TaskWindow.index == index)
        redone = conn.execute(
            sql_update(TaskWindow)
            .where(key)
            .values(
                output=data,
                attempt=claim.attempt,
                computations=TaskWindow.computations + 1,
                computed_at=now,
            )
        ).rowcount
        if not redone:
            conn.execute(
                sql_insert(TaskWindow).values(
                    task_id=claim.task_id,
                    index=index,
                    output=data,
                    attempt=claim.attempt,
                    computations=1,
                    computed_at=now,
                )
            )


def records(engine: Engine, task_id: str) -> list[WindowRecord]:
    """The task's finished windows' bookkeeping, in order."""
    query = (
        select(
            TaskWindow.index,
            TaskWindow.attempt,
            TaskWindow.computations,
            TaskWindow.computed_at,
        )
        .where(TaskWindow.task_id == task_id)
        .order_by(TaskWindow.index)
    )
    with read_transaction(engine) as conn:
        return [WindowRecord(**r._asdict()) for r in conn.execute(query)]
