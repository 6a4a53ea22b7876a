"""Durable asynchronous tasks: a SQL store (SQLite or PostgreSQL), leased workers,
resumable windows, webhooks and retention."""

from stepaudio.tasks.store import Claim, LeaseLost, TaskStore
from stepaudio.tasks.worker import WorkerPool, run_standalone

__all__ = ["Claim", "LeaseLost", "TaskStore", "WorkerPool", "run_standalone"]
