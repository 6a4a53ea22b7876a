"""The durable task store: SQLite in the data directory by default, PostgreSQL for several
replicas. Every method is blocking and short; async callers run them in worker threads.

Transactions that write take SQLite's write lock at once (``BEGIN IMMEDIATE``); plain
reads are deferred transactions, which in WAL mode never wait for a writer. A database
that stays busy (or is away) surfaces as ``StoreUnavailable``: 503 with ``Retry-After``.

Claims are leases: a claim gets a fresh ``lease_token`` and a ``lease_until``; every write a
worker makes afterwards (heartbeat, progress, window, result) is a conditional UPDATE on
that token, so a worker that lost its lease (it stalled, or the task was cancelled or taken
again) changes nothing, and a result is stored exactly once.
"""

from __future__ import annotations

import contextlib
import fcntl
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    case,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
)
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from stepaudio.audio.cut import Span
from stepaudio.config import Settings
from stepaudio.engines.base import ModelOutput, Segment, Usage
from stepaudio.errors import Conflict, NotFound, StepAudioError, StoreUnavailable
from stepaudio.tasks import quotas, uploads
from stepaudio.tasks.models import (
    CANCELLED,
    COMPLETED,
    FAILED,
    FINISHED,
    PENDING,
    PROCESSING,
    Task,
    TaskWindow,
    Upload,
    UploadChunk,
    utcnow,
)
from stepaudio.tasks.scratch import clean_scratch
from stepaudio.tasks.views import request_hash, task_view

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant: serializes concurrent migrations of replicas starting together.
_PG_MIGRATION_LOCK = 0x5354_4550


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


def database_url(settings: Settings) -> str:
    url = settings.database_url or f"sqlite:///{settings.data_dir / 'tasks.db'}"
    # psycopg 3 is the driver we ship; plain postgresql:// would mean psycopg2.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
    return url


WRITE = "stepaudio_write"
"""Execution option marking a connection whose transactions write."""
JOURNAL_SIZE_LIMIT = 64 << 20
"""Bytes SQLite's WAL file is cut back to after a checkpoint (a large upload grows it)."""


def build_engine(url: str, busy_timeout_s: float = 30) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    engine = create_engine(url, connect_args={"timeout": busy_timeout_s})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Several processes share the file: WAL lets readers run beside the writer.
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        dbapi_conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        if conn.get_execution_options().get(WRITE, True):
            # Take the write lock up front: a deferred transaction that reads and then
            # writes fails at once with "database is locked" when another process wrote
            # in between.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            # A plain read: deferred, so in WAL mode it neither waits for nor blocks the
            # writer.
            conn.exec_driver_sql("BEGIN")

    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic, configured in code)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    lock_file = None
    if engine.dialect.name == "sqlite" and engine.url.database:
        lock_file = open(f"{engine.url.database}.migrate.lock", "w")  # noqa: SIM115
        fcntl.flock(lock_file, fcntl.LOCK_EX)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_lock({_PG_MIGRATION_LOCK})")
                conn.commit()
            try:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                conn.commit()
            finally:
                if engine.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_PG_MIGRATION_LOCK})")
                    conn.commit()
    finally:
        if lock_file is not None:
            lock_file.close()


def output_to_json(output: ModelOutput) -> dict[str, Any]:
    return asdict(output)


def _same_span(saved: list[float] | None, span: Span | None) -> bool:
    if span is None or saved is None:
        return span is None and saved is None
    return abs(saved[0] - span.start) < 1e-3 and abs(saved[1] - span.end) < 1e-3


def output_from_json(data: dict[str, Any]) -> ModelOutput:
    return ModelOutput(
        text=data["text"],
        thinking=data.get("thinking", ""),
        segments=[Segment(**s) for s in data.get("segments", [])],
        language=data.get("language"),
        usage=Usage(**data.get("usage", {})),
        truncated=data.get("truncated", False),
        backend=data.get("backend"),
    )


def _claimable(now: datetime):
    return or_(
        and_(Task.status == PENDING, Task.run_after <= now),
        and_(Task.status == PROCESSING, Task.lease_until < now),
    )


def _held(claim: Claim):
    return and_(
        Task.id == claim.task_id, Task.lease_token == claim.token, Task.status == PROCESSING
    )


class TaskStore:
    def __init__(self, engine: Engine, settings: Settings):
        self.engine = engine
        self.settings = settings

    @classmethod
    def open(cls, settings: Settings) -> TaskStore:
        """Connect to the configured database, migrate it, and drop what a crash left
        behind (half-written uploads, stale scratch files)."""
        url = database_url(settings)
        if url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = build_engine(url, settings.task_db_busy_timeout_s)
        migrate(engine)
        store = cls(engine, settings)
        store.remove_leftovers()
        return store

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[Connection]:
        """One transaction; the database's own busy/away errors become ``StoreUnavailable``
        (the boundary of our error tree)."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{WRITE: write})
                with conn.begin():
                    yield conn
        except (OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable(
                "The task database is busy or unavailable; retry shortly.",
                code="store_busy",
            ) from exc

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        return self._tx(write=False)

    # -- the API's side -----------------------------------------------------------------

    def create(
        self,
        *,
        owner: str,
        params: dict[str, Any],
        upload: Path,
        sha256: str,
        size: int,
        filename: str,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Store the upload (once per content, in short transactions) and then a pending
        task. Returns the task's view and whether it is new (False: the idempotency key's
        task, when it was asked for the same thing; else ``Conflict``). Quotas are checked
        before a byte is stored and again in the task's transaction."""
        fingerprint = request_hash(params, sha256, webhook_url)
        with self._read() as conn:
            replay = self._replay(conn, owner, idempotency_key, fingerprint)
            if replay is not None:
                return replay, False
            quotas.check(conn, self.settings, owner, sha256, size)
        for retry in range(3):
            uploads.write(self, upload, sha256, size)
            try:
                return self._create(
                    owner, params, sha256, size, filename, idempotency_key, webhook_url, fingerprint
                )
            except IntegrityError:
                # A concurrent request stored the same key first, or retention removed
                # the upload meanwhile: looking again settles it.
                if retry == 2:
                    raise
            except BaseException:
                with contextlib.suppress(StepAudioError):
                    uploads.remove_orphans(self, sha256)  # refused: keep none of its bytes
                raise
        raise AssertionError("unreachable")

    def _replay(
        self, conn: Connection, owner: str, key: str | None, fingerprint: str
    ) -> dict[str, Any] | None:
        if key is None:
            return None
        existing = conn.execute(
            select(Task).where(Task.owner == owner, Task.idempotency_key == key)
        ).first()
        if existing is None:
            return None
        if existing.request_hash not in (None, fingerprint):
            raise Conflict(
                "This Idempotency-Key was already used for a different request (other "
                "parameters or another file); use a new key.",
                param="Idempotency-Key",
                code="idempotency_key_reused",
            )
        return task_view(existing)

    def _create(
        self,
        owner: str,
        params: dict[str, Any],
        sha256: str,
        size: int,
        filename: str,
        idempotency_key: str | None,
        webhook_url: str | None,
        fingerprint: str,
    ) -> tuple[dict[str, Any], bool]:
        now = utcnow()
        with self._tx() as conn:
            replay = self._replay(conn, owner, idempotency_key, fingerprint)
            if replay is not None:
                return replay, False
            quotas.check(conn, self.settings, owner, sha256, size)
            if not uploads.mark_stored(conn, sha256, size, now):
                raise IntegrityError("upload incomplete", None, Exception("chunks missing"))
            task_id = str(uuid.uuid4())
            conn.execute(
                Task.__table__.insert().values(
                    id=task_id,
                    owner=owner,
                    idempotency_key=idempotency_key,
                    request_hash=fingerprint,
                    status=PENDING,
                    params=params,
                    upload_sha256=sha256,
                    filename=filename[:255],
                    progress_done=0,
                    attempts=0,
                    run_after=now,
                    webhook_url=webhook_url,
                    webhook_attempts=0,
                    created_at=now,
                )
            )
            row = conn.execute(select(Task).where(Task.id == task_id)).one()
            return task_view(row), True

    def check_pending_quota(self, owner: str) -> None:
        """429 if the key may not queue another task (asked before its upload is read)."""
        with self._read() as conn:
            quotas.check_pending(conn, self.settings, owner)

    def _row(self, conn: Connection, task_id: str, owner: str | None) -> Any:
        query = select(Task).where(Task.id == task_id)
        if owner is not None:
            query = query.where(Task.owner == owner)
        row = conn.execute(query).first()
        if row is None:
            # Another key's task is indistinguishable from a missing one, on purpose.
            raise NotFound(f"No task {task_id!r}.", param="task_id", code="task_not_found")
        return row

    def get(self, task_id: str, owner: str | None = None) -> dict[str, Any]:
        """The task's view; ``owner`` None: any owner (workers, tests)."""
        with self._read() as conn:
            return task_view(self._row(conn, task_id, owner))

    def list(
        self, owner: str, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[dict[str, Any]]:
        query = select(Task).where(Task.owner == owner)
        if status is not None:
            query = query.where(Task.status == status)
        query = query.order_by(Task.created_at.desc(), Task.id).limit(limit).offset(offset)
        with self._read() as conn:
            return [task_view(r, with_result=False) for r in conn.execute(query)]

    def cancel(self, task_id: str, owner: str | None = None) -> dict[str, Any]:
        """Cancel a pending or running task (its worker notices at its next heartbeat;
        its webhook, if any, is called with ``task.cancelled``); a finished task is left as
        it is."""
        with self._tx() as conn:
            self._row(conn, task_id, owner)
            conn.execute(
                sql_update(Task)
                .where(Task.id == task_id, Task.status.in_((PENDING, PROCESSING)))
                .values(**self._final(CANCELLED, None, utcnow()))
            )
            return task_view(self._row(conn, task_id, owner))

    # -- the workers' side ----------------------------------------------------------------

    def claim(self, worker: str) -> Claim | None:
        """Take the oldest runnable task (pending, or processing with an expired lease)."""
        settings = self.settings
        for _ in range(10):
            now = utcnow()
            with self._tx() as conn:
                # SKIP LOCKED lets PostgreSQL workers pass over each other's candidates;
                # SQLite ignores it, and the conditional UPDATE below decides instead.
                candidate = conn.execute(
                    select(Task.id, Task.status, Task.attempts, Task.error)
                    .where(_claimable(now))
                    .order_by(Task.created_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).first()
                if candidate is None:
                    return None
                still = and_(Task.id == candidate.id, _claimable(now))
                if (
                    candidate.status == PROCESSING
                    and candidate.attempts >= settings.task_max_attempts
                ):
                    # Its worker died during the last allowed attempt: no endless retry.
                    error = (
                        candidate.error
                        or StepAudioError(
                            f"The task's worker stopped responding; {candidate.attempts} attempts "
                            "made.",
                            code="worker_lost",
                        ).to_dict()
                    )
                    conn.execute(
                        sql_update(Task).where(still).values(**self._final(FAILED, error, now))
                    )
                    continue
                token = str(uuid.uuid4())
                taken = conn.execute(
                    sql_update(Task)
                    .where(still)
                    .values(
                        status=PROCESSING,
                        lease_token=token,
                        lease_until=now + timedelta(seconds=settings.task_lease_s),
                        attempts=Task.attempts + 1,
                        worker=worker[:128],
                        started_at=func.coalesce(Task.started_at, now),
                    )
                ).rowcount
                if taken != 1:
                    continue
                row = self._row(conn, candidate.id, None)
                return Claim(
                    row.id, token, row.attempts, row.params, row.upload_sha256, row.filename
                )
        return None

    def _final(self, status: str, error: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
        return {
            "status": status,
            "error": error,
            "finished_at": now,
            "lease_token": None,
            "lease_until": None,
            # A finished task's webhook (where it has one) becomes due now.
            "webhook_state": case((Task.webhook_url.is_not(None), "pending"), else_=None),
            "webhook_due": now,
        }

    def heartbeat(self, claim: Claim) -> bool:
        """Extend the lease; False: the task was cancelled or taken by another worker."""
        until = utcnow() + timedelta(seconds=self.settings.task_lease_s)
        with self._tx() as conn:
            return (
                conn.execute(
                    sql_update(Task).where(_held(claim)).values(lease_until=until)
                ).rowcount
                == 1
            )

    def progress(self, claim: Claim, done: int, total: int) -> bool:
        with self._tx() as conn:
            return (
                conn.execute(
                    sql_update(Task)
                    .where(_held(claim))
                    .values(progress_done=done, progress_total=total)
                ).rowcount
                == 1
            )

    def complete(self, claim: Claim, result: dict[str, Any]) -> bool:
        """Store the result, once: False if this worker no longer held the task."""
        now = utcnow()
        with self._tx() as conn:
            values = self._final(COMPLETED, None, now)
            return (
                conn.execute(
                    sql_update(Task).where(_held(claim)).values(result=result, **values)
                ).rowcount
                == 1
            )

    def fail(self, claim: Claim, error: dict[str, Any], *, retry: bool) -> str | None:
        """Record a failed attempt: back to pending after a backoff while attempts remain
        (and ``retry``), else failed for good. Returns the new status, None if not held."""
        settings = self.settings
        now = utcnow()
        if retry and claim.attempt < settings.task_max_attempts:
            delay = min(settings.task_retry_backoff_s * 2 ** (claim.attempt - 1), 600)
            values: dict[str, Any] = {
                "status": PENDING,
                "error": error,
                "run_after": now + timedelta(seconds=delay),
                "lease_token": None,
                "lease_until": None,
            }
        else:
            values = self._final(FAILED, error, now)
        with self._tx() as conn:
            held = conn.execute(sql_update(Task).where(_held(claim)).values(**values)).rowcount
        return values["status"] if held else None

    def release(self, claim: Claim) -> bool:
        """Hand a task back on shutdown: pending again, and this attempt does not count."""
        with self._tx() as conn:
            return (
                conn.execute(
                    sql_update(Task)
                    .where(_held(claim))
                    .values(
                        status=PENDING,
                        lease_token=None,
                        lease_until=None,
                        attempts=Task.attempts - 1,
                        run_after=utcnow(),
                    )
                ).rowcount
                == 1
            )

    def read_upload(self, sha256: str, dest: Path) -> None:
        """Write the stored upload to ``dest``, chunk by chunk, and check its hash."""
        uploads.read(self, sha256, dest)

    def load_window(self, task_id: str, index: int, span: Span | None = None) -> ModelOutput | None:
        """A finished window's output; None if absent or saved for another ``span``."""
        with self._read() as conn:
            data = conn.execute(
                select(TaskWindow.output).where(
                    TaskWindow.task_id == task_id, TaskWindow.index == index
                )
            ).scalar()
        if data is None or not _same_span(data.get("span"), span):
            return None
        return output_from_json(data)

    def save_window(
        self, claim: Claim, index: int, output: ModelOutput, span: Span | None = None
    ) -> None:
        """Keep a finished window; raises LeaseLost if this worker no longer holds the task."""
        data, now = output_to_json(output), utcnow()
        if span is not None:
            data["span"] = [span.start, span.end]
        with self._tx() as conn:
            # Lock the task row (PostgreSQL) so the lease cannot change under us.
            held = conn.execute(select(Task.id).where(_held(claim)).with_for_update()).first()
            if held is None:
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
                    TaskWindow.__table__.insert().values(
                        task_id=claim.task_id,
                        index=index,
                        output=data,
                        attempt=claim.attempt,
                        computations=1,
                        computed_at=now,
                    )
                )

    def windows(self, task_id: str) -> list[dict[str, Any]]:
        """Finished windows' bookkeeping (not their outputs), in order."""
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
        with self._read() as conn:
            return [r._asdict() for r in conn.execute(query)]

    # -- retention -------------------------------------------------------------------------

    def sweep(self) -> int:
        """Remove finished tasks older than the retention, and uploads no task uses."""
        cutoff = utcnow() - timedelta(hours=self.settings.task_retention_hours)
        old = select(Task.id).where(Task.status.in_(FINISHED), Task.finished_at < cutoff)
        unused = select(Upload.sha256).where(
            Upload.used_at < cutoff, Upload.sha256.not_in(select(Task.upload_sha256))
        )
        with self._tx() as conn:
            conn.execute(delete(TaskWindow).where(TaskWindow.task_id.in_(old)))
            removed = conn.execute(delete(Task).where(Task.id.in_(old))).rowcount
        try:
            with self._tx() as conn:
                conn.execute(delete(UploadChunk).where(UploadChunk.sha256.in_(unused)))
                conn.execute(delete(Upload).where(Upload.sha256.in_(unused)))
        except IntegrityError:
            pass  # a new task took one of them meanwhile; the next sweep looks again
        self.remove_leftovers()
        return removed

    def remove_leftovers(self) -> None:
        """What a crash leaves: uploads a dead writer never finished, and scratch files
        (decoded audio, uploads being received) in ``data_dir``."""
        uploads.remove_orphans(self)
        settings = self.settings
        clean_scratch(
            [settings.data_dir / "tmp", settings.data_dir / "uploads"],
            settings.scratch_max_age_hours * 3600,
        )
