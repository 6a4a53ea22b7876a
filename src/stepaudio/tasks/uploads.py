"""Uploads in the task database: written a few chunks per transaction, read back whole,
and cleaned up when a writer died half-way.

A whole upload in one transaction would hold SQLite's only write lock for as long as
gigabytes take to insert: every heartbeat, progress update and new task would wait (and
time out). So an upload row is created unstored, its chunks follow in batches of
``BATCH_CHUNKS`` (each batch a short transaction that also touches ``used_at``), and the
task's own transaction marks it stored. Chunks are addressed by (content hash, sequence):
two writers of the same content write the same bytes, so inserts skip what exists.
An unstored upload no task uses and nobody touched for a lease is a dead writer's:
``remove_orphans`` drops it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, Engine, and_, delete, func, select
from sqlalchemy import update as sql_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from stepaudio.errors import StepAudioError
from stepaudio.tasks.db import read_transaction, transaction
from stepaudio.tasks.models import CHUNK_BYTES, Task, Upload, UploadChunk, utcnow

BATCH_CHUNKS = 8
"""Chunks (of ``CHUNK_BYTES``) per write transaction: 8 MiB keeps each one in the
milliseconds, so a writer never holds the lock long."""


def chunk_count(size: int) -> int:
    return -(-size // CHUNK_BYTES)


def _insert_ignoring_existing(conn: Connection, table, rows: list[dict]) -> None:
    dialect = conn.dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    conn.execute(insert(table).on_conflict_do_nothing(), rows)


def is_stored(conn: Connection, sha256: str) -> bool:
    return bool(conn.execute(select(Upload.stored).where(Upload.sha256 == sha256)).scalar())


def write(engine: Engine, path: Path, sha256: str, size: int) -> None:
    """Make sure every chunk of the upload is in the database (not yet marked stored,
    unless it already was)."""
    now = utcnow()
    with transaction(engine) as conn:
        touched = conn.execute(
            sql_update(Upload).where(Upload.sha256 == sha256).values(used_at=now)
        ).rowcount
        if touched and is_stored(conn, sha256):
            return
        if not touched:
            _insert_ignoring_existing(
                conn,
                Upload.__table__,
                [{"sha256": sha256, "size": size, "used_at": now, "stored": False}],
            )
    with open(path, "rb") as f:
        seq = 0
        while True:
            rows: list[dict[str, object]] = []
            while len(rows) < BATCH_CHUNKS and (data := f.read(CHUNK_BYTES)):
                rows.append({"sha256": sha256, "seq": seq, "data": data})
                seq += 1
            if not rows:
                return
            with transaction(engine) as conn:
                _insert_ignoring_existing(conn, UploadChunk.__table__, rows)
                conn.execute(
                    sql_update(Upload).where(Upload.sha256 == sha256).values(used_at=utcnow())
                )


def mark_stored(conn: Connection, sha256: str, size: int, now: datetime) -> bool:
    """In the task's transaction: check every chunk is there and mark the upload stored.
    False: part of it is missing (an orphan sweep took it meanwhile); write it again."""
    count = conn.execute(
        select(func.count()).select_from(UploadChunk).where(UploadChunk.sha256 == sha256)
    ).scalar_one()
    if count != chunk_count(size):
        return False
    return (
        conn.execute(
            sql_update(Upload).where(Upload.sha256 == sha256).values(stored=True, used_at=now)
        ).rowcount
        == 1
    )


def _orphans(now: datetime, grace: timedelta):
    return select(Upload.sha256).where(
        Upload.stored.is_(False),
        Upload.used_at < now - grace,
        Upload.sha256.not_in(select(Task.upload_sha256)),
    )


def remove_orphans(engine: Engine, lease_s: float, sha256: str | None = None) -> int:
    """Drop unstored uploads no task uses that no writer touched for a lease (``lease_s``;
    or, with ``sha256``, that one at once: a refused request's own leftovers)."""
    grace = timedelta(seconds=0 if sha256 else lease_s)
    orphans = _orphans(utcnow(), grace)
    if sha256 is not None:
        orphans = orphans.where(Upload.sha256 == sha256)
    with transaction(engine) as conn:
        shas = list(conn.execute(orphans).scalars())
        if not shas:
            return 0
        conn.execute(delete(UploadChunk).where(UploadChunk.sha256.in_(shas)))
        conn.execute(delete(Upload).where(Upload.sha256.in_(shas), Upload.stored.is_(False)))
    return len(shas)


def read(engine: Engine, sha256: str, dest: Path) -> None:
    """Write the stored upload to ``dest``, chunk by chunk (each a short read), and check
    its hash."""
    digest = hashlib.sha256()
    with open(dest, "wb") as out:
        seq = 0
        while True:
            with read_transaction(engine) as conn:
                data = conn.execute(
                    select(UploadChunk.data).where(
                        and_(UploadChunk.sha256 == sha256, UploadChunk.seq == seq)
                    )
                ).scalar()
            if data is None:
                break
            digest.update(data)
            out.write(data)
            seq += 1
    if digest.hexdigest() != sha256:
        raise StepAudioError("The task's stored upload is incomplete.", code="upload_missing")
