"""The task database: its URL, the SQLAlchemy engine (SQLite tuned for several processes,
or PostgreSQL), schema migrations, and the transactions every store module runs in.

Transactions that write take SQLite's write lock at once (``BEGIN IMMEDIATE``); plain
reads are deferred transactions, which in WAL mode never wait for a writer. A database
that stays busy (or is away) surfaces as ``StoreUnavailable``: 503 with ``Retry-After``.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from stepaudio.config import Settings
from stepaudio.errors import StoreUnavailable

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant: serializes concurrent migrations of replicas starting together.
_PG_MIGRATION_LOCK = 0x5354_4550

WRITE = "stepaudio_write"
"""Execution option marking a connection whose transactions write."""
JOURNAL_SIZE_LIMIT = 64 << 20
"""Bytes SQLite's WAL file is cut back to after a checkpoint (a large upload grows it)."""


def database_url(settings: Settings) -> str:
    url = settings.database_url or f"sqlite:///{settings.data_dir / 'tasks.db'}"
    # psycopg 3 is the driver we ship; plain postgresql:// would mean psycopg2.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_db_engine(url: str, busy_timeout_s: float = 30) -> Engine:
    """The SQLAlchemy engine for the task database (not a model engine: see
    ``engines/factory.py`` for those)."""
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


def open_database(settings: Settings) -> Engine:
    """The configured database, migrated to the newest schema."""
    url = database_url(settings)
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(url, settings.tasks.db_busy_timeout_s)
    migrate(engine)
    return engine


@contextlib.contextmanager
def transaction(engine: Engine, *, write: bool = True) -> Iterator[Connection]:
    """One transaction; the database's own busy/away errors become ``StoreUnavailable``
    (the boundary of our error tree)."""
    try:
        with engine.connect() as conn:
            conn.execution_options(**{WRITE: write})
            with conn.begin():
                yield conn
    except (OperationalError, PoolTimeout) as exc:
        raise StoreUnavailable(
            "The task database is busy or unavailable; retry shortly.",
            code="store_busy",
        ) from exc


def read_transaction(engine: Engine) -> contextlib.AbstractContextManager[Connection]:
    """A transaction that only reads (deferred on SQLite: it waits for no writer)."""
    return transaction(engine, write=False)
