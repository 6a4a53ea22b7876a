"""Retention: finished tasks are kept ``task_retention_hours``, uploads as long as a task
uses them, and what a crash left (half-written uploads, scratch files) not at all."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError

from stepaudio.config import Settings
from stepaudio.tasks import uploads
from stepaudio.tasks.db import transaction
from stepaudio.tasks.models import Task, TaskWindow, Upload, UploadChunk, utcnow
from stepaudio.tasks.scratch import clean_scratch
from stepaudio.tasks.status import FINISHED


def sweep(engine: Engine, settings: Settings) -> int:
    """Remove finished tasks older than the retention, and uploads no task uses; returns
    how many tasks went."""
    cutoff = utcnow() - timedelta(hours=settings.tasks.retention_hours)
    old = select(Task.id).where(Task.status.in_(FINISHED), Task.finished_at < cutoff)
    unused = select(Upload.sha256).where(
        Upload.used_at < cutoff, Upload.sha256.not_in(select(Task.upload_sha256))
    )
    with transaction(engine) as conn:
        conn.execute(delete(TaskWindow).where(TaskWindow.task_id.in_(old)))
        removed = conn.execute(delete(Task).where(Task.id.in_(old))).rowcount
    try:
        with transaction(engine) as conn:
            conn.execute(delete(UploadChunk).where(UploadChunk.sha256.in_(unused)))
            conn.execute(delete(Upload).where(Upload.sha256.in_(unused)))
    except IntegrityError:
        pass  # a new task took one of them meanwhile; the next sweep looks again
    remove_leftovers(engine, settings)
    return removed


def remove_leftovers(engine: Engine, settings: Settings) -> None:
    """What a crash leaves: uploads a dead writer never finished, and scratch files
    (decoded audio, uploads being received) in ``data_dir``."""
    uploads.remove_orphans(engine, settings.tasks.lease_s)
    clean_scratch(
        [settings.data_dir / "tmp", settings.data_dir / "uploads"],
        settings.tasks.scratch_max_age_hours * 3600,
    )
