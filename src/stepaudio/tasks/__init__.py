"""Durable asynchronous tasks: a SQL store (SQLite or PostgreSQL), leased workers,
resumable windows, webhooks and retention."""

from stepaudio.tasks.async_store import AsyncTaskStore
from stepaudio.tasks.lease import Claim, LeaseLost
from stepaudio.tasks.status import TaskStatus
from stepaudio.tasks.store import TaskStore
from stepaudio.tasks.worker import WorkerPool, run_standalone

__all__ = [
    "AsyncTaskStore",
    "Claim",
    "LeaseLost",
    "TaskStatus",
    "TaskStore",
    "WorkerPool",
    "run_standalone",
]
