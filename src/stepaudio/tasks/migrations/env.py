"""Alembic environment: always run in code, on a connection the caller passes in.

``stepaudio.tasks.db.migrate`` builds the Config and puts an open connection in
``config.attributes["connection"]``; there is no alembic.ini and no offline mode.
"""

from __future__ import annotations

from alembic import context

from stepaudio.tasks.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations through stepaudio.tasks.db.migrate(engine).")

context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
