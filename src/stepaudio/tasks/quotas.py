"""Per-key quotas on tasks: how many may wait or run, and how many upload bytes they keep.

One key must not fill the queue or the database for everyone. Both counts cover the
key's unfinished (pending or processing) tasks: that is what it holds right now; finished
tasks give their share back. Uploads are shared by content, so a key is charged once per
distinct upload, and a new task on an upload the key already queued costs no bytes.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from stepaudio.config import Settings
from stepaudio.errors import PayloadTooLarge, QueueFull
from stepaudio.tasks.models import Task, Upload
from stepaudio.tasks.status import UNFINISHED


def pending_tasks(conn: Connection, owner: str) -> int:
    return conn.execute(
        select(func.count())
        .select_from(Task)
        .where(Task.owner == owner, Task.status.in_(UNFINISHED))
    ).scalar_one()


def _queued_uploads(owner: str):
    return (
        select(Task.upload_sha256)
        .where(Task.owner == owner, Task.status.in_(UNFINISHED))
        .distinct()
    )


def queued_bytes(conn: Connection, owner: str) -> tuple[int, set[str]]:
    """Bytes of the distinct uploads the key's unfinished tasks use, and their hashes."""
    rows = conn.execute(
        select(Upload.sha256, Upload.size).where(Upload.sha256.in_(_queued_uploads(owner)))
    ).all()
    return sum(r.size for r in rows), {r.sha256 for r in rows}


def check_pending(conn: Connection, settings: Settings, owner: str) -> None:
    limit = settings.tasks.max_pending_per_key
    if pending_tasks(conn, owner) >= limit:
        raise QueueFull(
            f"This key already has {limit} pending or running tasks; wait for some to "
            "finish (or cancel them).",
            code="task_quota_exceeded",
        )


def check(conn: Connection, settings: Settings, owner: str, sha256: str, size: int) -> None:
    """Raise 429 (or 413 for an upload larger than the whole quota) if one more task on
    this upload would put the key over a quota."""
    check_pending(conn, settings, owner)
    limit = int(settings.tasks.max_stored_mb_per_key * 2**20)
    if size > limit:
        raise PayloadTooLarge(
            f"The upload is larger than this key's storage quota of "
            f"{settings.tasks.max_stored_mb_per_key:g} MiB.",
            param="audio",
            code="storage_quota_exceeded",
        )
    used, shas = queued_bytes(conn, owner)
    if sha256 not in shas and used + size > limit:
        raise QueueFull(
            f"This key's queued uploads would exceed its {settings.tasks.max_stored_mb_per_key:g} "
            "MiB storage quota; wait for tasks to finish (or cancel some).",
            code="storage_quota_exceeded",
        )
