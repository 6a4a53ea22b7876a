"""Alembic migrations of the task store (run in code by ``stepaudio.tasks.store.migrate``)."""
