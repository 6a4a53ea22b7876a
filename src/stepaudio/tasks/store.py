"""The durable task store: SQLite in the data directory by default, PostgreSQL for several
replicas. Every method is blocking and short; async callers go through
``AsyncTaskStore`` (``tasks/async_store.py``), which runs them in threads of its own.

This module is the lease state machine (see ``tasks/lease.py``): a claim gets a fresh
``lease_token`` and a ``lease_until``; every write a worker makes afterwards (heartbeat,
progress, window, result) is a conditional UPDATE on that token, so a worker that lost its
lease changes nothing, and a result is stored exactly once. The rest lives beside it:
``db.py`` (engine, transactions, migrations), ``uploads.py``, ``checkpoints.py`` (finished
windows), ``retention.py``, ``idempotency.py``, ``quotas.py``, ``outbox.py`` (webhooks).
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, select
from sqlalchemy import delete as sql_delete
from sqlalchemy import insert as sql_insert
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError

from stepaudio.audio.cut import Span
from stepaudio.config import Settings
from stepaudio.engines.base import ModelOutput
from stepaudio.errors import Conflict, NotFound, StepAudioError
from stepaudio.tasks import checkpoints, idempotency, quotas, retention, uploads
from stepaudio.tasks.checkpoints import WindowRecord
from stepaudio.tasks.db import open_database, read_transaction, transaction
from stepaudio.tasks.lease import Claim, claimable, held
from stepaudio.tasks.models import Task, TaskWindow, utcnow
from stepaudio.tasks.records import TaskRecord
from stepaudio.tasks.status import FINISHED, UNFINISHED, TaskStatus


class TaskStore:
    def __init__(self, engine: Engine, settings: Settings):
        self.engine = engine
        self.settings = settings

    @classmethod
    def open(cls, settings: Settings) -> TaskStore:
        """Connect to the configured database, migrate it, and drop what a crash left
        behind (half-written uploads, stale scratch files)."""
        store = cls(open_database(settings), settings)
        store.remove_leftovers()
        return store

    def close(self) -> None:
        self.engine.dispose()

    def _tx(self) -> contextlib.AbstractContextManager[Connection]:
        return transaction(self.engine)

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        return read_transaction(self.engine)

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
    ) -> tuple[TaskRecord, bool]:
        """Store the upload (once per content, in short transactions) and then a pending
        task. Returns the task and whether it is new (False: the idempotency key's task,
        when it was asked for the same thing; else ``Conflict``). Quotas are checked
        before a byte is stored and again in the task's transaction."""
        fingerprint = idempotency.request_hash(params, sha256, webhook_url)
        with self._read() as conn:
            replay = idempotency.replay(conn, owner, idempotency_key, fingerprint)
            if replay is not None:
                return replay, False
            quotas.check(conn, self.settings, owner, sha256, size)
        for retry in range(3):
            uploads.write(self.engine, upload, sha256, size)
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
                    # Refused: keep none of its bytes.
                    uploads.remove_orphans(self.engine, self.settings.tasks.lease_s, sha256)
                raise
        raise AssertionError("unreachable")

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
    ) -> tuple[TaskRecord, bool]:
        now = utcnow()
        with self._tx() as conn:
            replay = idempotency.replay(conn, owner, idempotency_key, fingerprint)
            if replay is not None:
                return replay, False
            quotas.check(conn, self.settings, owner, sha256, size)
            if not uploads.mark_stored(conn, sha256, size, now):
                raise IntegrityError("upload incomplete", None, Exception("chunks missing"))
            task_id = str(uuid.uuid4())
            conn.execute(
                sql_insert(Task).values(
                    id=task_id,
                    owner=owner,
                    idempotency_key=idempotency_key,
                    request_hash=fingerprint,
                    status=TaskStatus.PENDING,
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
            return self._task(conn, task_id, None), True

    def check_pending_quota(self, owner: str) -> None:
        """429 if the key may not queue another task (asked before its upload is read)."""
        with self._read() as conn:
            quotas.check_pending(conn, self.settings, owner)

    def _task(self, conn: Connection, task_id: str, owner: str | None) -> TaskRecord:
        query = select(Task).where(Task.id == task_id)
        if owner is not None:
            query = query.where(Task.owner == owner)
        row = conn.execute(query).first()
        if row is None:
            # Another key's task is indistinguishable from a missing one, on purpose.
            raise NotFound(f"No task {task_id!r}.", param="task_id", code="task_not_found")
        return TaskRecord.from_row(row)

    def get(self, task_id: str, owner: str | None = None) -> TaskRecord:
        """The task; ``owner`` None: any owner (workers, tests)."""
        with self._read() as conn:
            return self._task(conn, task_id, owner)

    def list_tasks(
        self, owner: str, *, status: TaskStatus | None = None, limit: int = 50, offset: int = 0
    ) -> list[TaskRecord]:
        """The owner's tasks, newest first."""
        query = select(Task).where(Task.owner == owner)
        if status is not None:
            query = query.where(Task.status == status)
        query = query.order_by(Task.created_at.desc(), Task.id).limit(limit).offset(offset)
        with self._read() as conn:
            return [TaskRecord.from_row(r) for r in conn.execute(query)]

    def cancel(self, task_id: str, owner: str | None = None) -> TaskRecord:
        """Cancel a pending or running task (its worker notices at its next heartbeat;
        its webhook, if any, is called with ``task.cancelled``); a finished task is left as
        it is."""
        with self._tx() as conn:
            self._task(conn, task_id, owner)
            conn.execute(
                sql_update(Task)
                .where(Task.id == task_id, Task.status.in_(UNFINISHED))
                .values(**self._final(TaskStatus.CANCELLED, None, utcnow()))
            )
            return self._task(conn, task_id, owner)

    def delete(self, task_id: str, owner: str | None = None) -> None:
        """Remove a finished task and its result for good (its upload goes with the next
        sweep, once no task uses it). An unfinished one must be cancelled first: 409."""
        with self._tx() as conn:
            task = self._task(conn, task_id, owner)
            if task.status not in FINISHED:
                raise Conflict(
                    f"Task {task_id!r} is {task.status}: cancel it first.",
                    param="task_id",
                    code="task_not_finished",
                )
            conn.execute(sql_delete(TaskWindow).where(TaskWindow.task_id == task_id))
            conn.execute(sql_delete(Task).where(Task.id == task_id))

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
                    .where(claimable(now))
                    .order_by(Task.created_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).first()
                if candidate is None:
                    return None
                still = and_(Task.id == candidate.id, claimable(now))
                if candidate.status == TaskStatus.PROCESSING and not settings.tasks.retry.again(
                    candidate.attempts
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
                        sql_update(Task)
                        .where(still)
                        .values(**self._final(TaskStatus.FAILED, error, now))
                    )
                    continue
                token = str(uuid.uuid4())
                taken = conn.execute(
                    sql_update(Task)
                    .where(still)
                    .values(
                        status=TaskStatus.PROCESSING,
                        lease_token=token,
                        lease_until=now + timedelta(seconds=settings.tasks.lease_s),
                        attempts=Task.attempts + 1,
                        worker=worker[:128],
                        started_at=func.coalesce(Task.started_at, now),
                    )
                ).rowcount
                if taken != 1:
                    continue
                row = conn.execute(
                    select(
                        Task.attempts, Task.params, Task.upload_sha256, Task.filename, Task.owner
                    ).where(Task.id == candidate.id)
                ).one()
                return Claim(
                    candidate.id,
                    token,
                    row.attempts,
                    row.params,
                    row.upload_sha256,
                    row.filename,
                    row.owner,
                )
        return None

    def _final(
        self, status: TaskStatus, error: dict[str, Any] | None, now: datetime
    ) -> dict[str, Any]:
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

    def _update_held(self, claim: Claim, **values: Any) -> bool:
        """Apply ``values`` if this claim still holds the task; False if it does not."""
        with self._tx() as conn:
            return conn.execute(sql_update(Task).where(held(claim)).values(**values)).rowcount == 1

    def heartbeat(self, claim: Claim) -> bool:
        """Extend the lease; False: the task was cancelled or taken by another worker."""
        until = utcnow() + timedelta(seconds=self.settings.tasks.lease_s)
        return self._update_held(claim, lease_until=until)

    def progress(self, claim: Claim, done: int, total: int) -> bool:
        return self._update_held(claim, progress_done=done, progress_total=total)

    def complete(self, claim: Claim, result: dict[str, Any]) -> bool:
        """Store the result, once: False if this worker no longer held the task."""
        final = self._final(TaskStatus.COMPLETED, None, utcnow())
        return self._update_held(claim, result=result, **final)

    def fail(self, claim: Claim, error: dict[str, Any], *, retry: bool) -> TaskStatus | None:
        """Record a failed attempt: back to pending after a backoff while attempts remain
        (and ``retry``), else failed for good. Returns the new status, None if not held."""
        settings = self.settings
        now = utcnow()
        policy = settings.tasks.retry
        if retry and policy.again(claim.attempt):
            delay = policy.delay(claim.attempt)
            values: dict[str, Any] = {
                "status": TaskStatus.PENDING,
                "error": error,
                "run_after": now + timedelta(seconds=delay),
                "lease_token": None,
                "lease_until": None,
            }
        else:
            values = self._final(TaskStatus.FAILED, error, now)
        return values["status"] if self._update_held(claim, **values) else None

    def release(self, claim: Claim) -> bool:
        """Hand a task back on shutdown: pending again, and this attempt does not count."""
        return self._update_held(
            claim,
            status=TaskStatus.PENDING,
            lease_token=None,
            lease_until=None,
            attempts=Task.attempts - 1,
            run_after=utcnow(),
        )

    # -- what a claimed task reads and keeps ------------------------------------------------

    def read_upload(self, sha256: str, dest: Path) -> None:
        """Write the stored upload to ``dest``, chunk by chunk, and check its hash."""
        uploads.read(self.engine, sha256, dest)

    def load_window(self, task_id: str, index: int, span: Span | None = None) -> ModelOutput | None:
        """A finished window's output; None if absent or saved for another ``span``."""
        return checkpoints.load(self.engine, task_id, index, span)

    def save_window(
        self, claim: Claim, index: int, output: ModelOutput, span: Span | None = None
    ) -> None:
        """Keep a finished window; raises LeaseLost if this worker no longer holds the task."""
        checkpoints.save(self.engine, claim, index, output, span)

    def windows(self, task_id: str) -> list[WindowRecord]:
        """Finished windows' bookkeeping (not their outputs), in order."""
        return checkpoints.records(self.engine, task_id)

    # -- retention -------------------------------------------------------------------------

    def sweep(self) -> int:
        """Remove finished tasks older than the retention, and uploads no task uses."""
        return retention.sweep(self.engine, self.settings)

    def remove_leftovers(self) -> None:
        """What a crash leaves: unfinished uploads and stale scratch files."""
        retention.remove_leftovers(self.engine, self.settings)
