"""Hardening: uploads written in several transactions, idempotency fingerprints, and the
service's generated secrets.

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite has it): recreating ``uploads`` would cascade-delete chunks.
    # Rows written before chunked uploads were always whole, hence the default.
    op.add_column(
        "uploads", sa.Column("stored", sa.Boolean, nullable=False, server_default=sa.true())
    )
    op.add_column("tasks", sa.Column("request_hash", sa.String(64)))
    op.create_index("ix_tasks_owner_status", "tasks", ["owner", "status"])
    op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("service_secrets")
    op.drop_index("ix_tasks_owner_status", "tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("request_hash")
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("stored")
