"""The task store's tables. The schema itself is created by the Alembic migrations in
``migrations/versions``; these definitions are what the code queries with, and must match.

Times are naive UTC (``utcnow()``): the same on SQLite and PostgreSQL, and comparable
across the machines that share the database (their clocks are assumed NTP-synced).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from stepaudio.tasks.status import TaskStatus

# Uploads live in the database, in chunks: a worker on any machine that shares the
# database can run any task, and no row ever holds a whole recording in memory.
CHUNK_BYTES = 1 << 20


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class StatusColumn(TypeDecorator[TaskStatus]):
    """A ``TaskStatus`` kept as its plain string (the drivers are handed a ``str``, never
    the enum, whose adaptation they might do by name)."""

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else TaskStatus(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> TaskStatus | None:
        return None if value is None else TaskStatus(value)


class Upload(Base):
    __tablename__ = "uploads"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[datetime] = mapped_column(DateTime)
    """Last time a task was created on it, or a writer stored one of its chunks: retention
    never removes a freshly reused one, and an unstored upload untouched for a lease is
    the leftover of a writer that died."""
    stored: Mapped[bool] = mapped_column(Boolean, default=True)
    """All chunks are written. Uploads are written a few chunks per transaction (readers
    and heartbeats are not held up by a large one); tasks are only created on stored ones."""


class UploadChunk(Base):
    __tablename__ = "upload_chunks"

    sha256: Mapped[str] = mapped_column(
        String(64), ForeignKey("uploads.sha256", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("owner", "idempotency_key", name="uq_tasks_owner_idempotency_key"),
        Index("ix_tasks_status_run_after", "status", "run_after"),
        Index("ix_tasks_owner_created_at", "owner", "created_at"),
        Index("ix_tasks_webhook_state", "webhook_state"),
        Index("ix_tasks_upload_sha256", "upload_sha256"),
        Index("ix_tasks_owner_status", "owner", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[TaskStatus] = mapped_column(StatusColumn())
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    upload_sha256: Mapped[str] = mapped_column(String(64), ForeignKey("uploads.sha256"))
    filename: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    """Fingerprint of what was asked (params, upload, webhook): an ``Idempotency-Key``
    replayed with another request is a conflict, not the old task."""
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[datetime] = mapped_column(DateTime)
    """Not claimed before this (retry backoff)."""
    lease_token: Mapped[str | None] = mapped_column(String(36))
    """Changes on every claim: only the current holder may heartbeat, save or finish."""
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    worker: Mapped[str | None] = mapped_column(String(128))
    """The worker holding (or that last held) the task."""
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """The final error, or the last attempt's while a retry waits."""
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_state: Mapped[str | None] = mapped_column(String(16))
    """None (no webhook), pending, delivered or failed."""
    webhook_due: Mapped[datetime | None] = mapped_column(DateTime)
    """When a pending webhook may be (re)tried: a delivery in progress pushes it forward."""
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class TaskWindow(Base):
    """One finished window's output: a resumed task loads these instead of redoing them."""

    __tablename__ = "task_windows"

    task_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    output: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempt: Mapped[int] = mapped_column(Integer)
    """The task attempt that computed it."""
    computations: Mapped[int] = mapped_column(Integer, default=1)
    """How many times it was computed: more than 1 means work was redone."""
    computed_at: Mapped[datetime] = mapped_column(DateTime)


class ServiceSecret(Base):
    """Secrets the service generates once and every process sharing the database uses
    (the webhook signing master when no ``webhook_secret`` is set)."""

    __tablename__ = "service_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))


class PageSession(Base):
    """A web page login: the cookie holds a random id, this row the key's owner. Only
    the id's SHA-256 is stored, so a copy of the database logs nobody in."""

    __tablename__ = "page_sessions"
    __table_args__ = (Index("ix_page_sessions_expires_at", "expires_at"),)

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class Voice(Base):
    """A known speaker of one key: a name and a voice print (CAM++ embedding, 192 float32,
    unit length), never the audio it was made from. Biometric data: deleted for good by
    ``DELETE /api/voices/{id}``."""

    __tablename__ = "voices"
    __table_args__ = (UniqueConstraint("owner", "name", name="uq_voices_owner_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    print: Mapped[bytes] = mapped_column(LargeBinary)
    seconds: Mapped[float] = mapped_column(Float)
    """Speech the print was made from."""
    created_at: Mapped[datetime] = mapped_column(DateTime)
