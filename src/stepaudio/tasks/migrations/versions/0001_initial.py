"""Initial schema: uploads (chunked), tasks, finished windows.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("used_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "upload_chunks",
        sa.Column(
            "sha256",
            sa.String(64),
            sa.ForeignKey("uploads.sha256", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("upload_sha256", sa.String(64), sa.ForeignKey("uploads.sha256"), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("progress_done", sa.Integer, nullable=False),
        sa.Column("progress_total", sa.Integer),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("run_after", sa.DateTime, nullable=False),
        sa.Column("lease_token", sa.String(36)),
        sa.Column("lease_until", sa.DateTime),
        sa.Column("worker", sa.String(128)),
        sa.Column("result", sa.JSON),
        sa.Column("error", sa.JSON),
        sa.Column("webhook_url", sa.Text),
        sa.Column("webhook_state", sa.String(16)),
        sa.Column("webhook_due", sa.DateTime),
        sa.Column("webhook_attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.UniqueConstraint("owner", "idempotency_key", name="uq_tasks_owner_idempotency_key"),
    )
    op.create_index("ix_tasks_status_run_after", "tasks", ["status", "run_after"])
    op.create_index("ix_tasks_owner_created_at", "tasks", ["owner", "created_at"])
    op.create_index("ix_tasks_webhook_state", "tasks", ["webhook_state"])
    op.create_index("ix_tasks_upload_sha256", "tasks", ["upload_sha256"])
    op.create_table(
        "task_windows",
        sa.Column(
            "task_id",
            sa.String(36),
            sa.ForeignKey("tasks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("index", sa.Integer, primary_key=True),
        sa.Column("output", sa.JSON, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("computations", sa.Integer, nullable=False),
        sa.Column("computed_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("task_windows")
    op.drop_table("tasks")
    op.drop_table("upload_chunks")
    op.drop_table("uploads")
