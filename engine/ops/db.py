"""Database connections: one engine per URL, SQLite set up for concurrent use.

SQLite: WAL, a busy timeout, and write transactions (`begin_write`) that begin IMMEDIATE so that two
workers changing the same case queue up instead of failing on a stale snapshot.
PostgreSQL: READ COMMITTED; conflicting writers are caught by version checks.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from engine.models import Base
from engine.settings import int_env

WRITE_OPTION = "tsunagu_write"
T = TypeVar("T")
# SQLite copies the WAL into the database file (a checkpoint) in whichever commit takes the WAL
# past `wal_autocheckpoint` pages: by default 1,000, a few dozen completions, so one request in
# twenty or so paid for it (a completion's p95 13.8 against 9.9 ms without). A serving process's
# commits leave that to the worker process, which checkpoints every CHECKPOINT_INTERVAL seconds
# (`checkpoint`); they still do one past WAL_BACKSTOP_PAGES (40 MB), which only bounds the WAL where
# no worker runs. Background work (the worker, a CLI command) keeps SQLite's 1,000: nobody waits
# on its commits, and the pause after each checkpoint gives other writers their turn at the
# write lock (sweepers taking it back at once, one of four was left without any timer).
WAL_BACKSTOP_PAGES = 10_000
WAL_PAGES_BACKGROUND = 1_000
CHECKPOINT_INTERVAL = 1.0


def make_engine(url: str, serving: bool = False, **kwargs) -> Engine:
    """The engine for `url`. `serving`: a process that answers requests (its SQLite commits leave
    WAL checkpoints to the worker, see WAL_BACKSTOP_PAGES)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # How long a writer waits for the write lock before "database is locked" (answered with 503).
        busy = float(os.environ.get("TSUNAGU_SQLITE_BUSY_TIMEOUT", "30"))
        # Each connection's page cache. SQLite's own 2 MB holds less than one queue answer's pages
        # at 100,000 cases (500 tasks: 8.8 ms, against 6.4 ms with 8 MB or more); a worker keeps
        # few connections, so 16 MB each stays far inside its memory budget.
        cache_mb = int_env("TSUNAGU_SQLITE_CACHE_MB", 16)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_setup(dbapi_conn, _record):  # noqa: ANN001
            # Let SQLAlchemy, not the driver, decide when transactions begin.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy * 1000)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA cache_size=-{cache_mb * 1024}")
            cur.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES if serving else WAL_PAGES_BACKGROUND}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001
            # Readers share the database (WAL); a writer takes the write lock up front so
            # it waits its turn rather than failing when its snapshot turns out stale.
            immediate = conn.get_execution_options().get(WRITE_OPTION)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def checkpoint(engine: Engine) -> tuple[int, int, int] | None:
    """Copy what the WAL holds into the database file as far as open readers allow, waiting for
    no one (SQLite's PASSIVE checkpoint; the next writer then starts the WAL over). Returns
    (1 if readers kept it from finishing else 0, pages in the WAL, pages copied); None where the
    database is not SQLite."""
    if engine.dialect.name != "sqlite":
        return None
    # The driver's own connection, outside any transaction: a checkpoint cannot run inside one.
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA wal_checkpoint(PASSIVE)")
        busy, pages, copied = cur.fetchone()
        cur.close()
    finally:
        raw.close()
    return busy, pages, copied


def begin_write(session: Session) -> None:
    """Start the transaction of a command that will write. Any read-only transaction the
    session has open (authentication, say) is ended first."""
    if session.in_transaction():
        if session.connection().get_execution_options().get(WRITE_OPTION):
            return
        session.commit()
    # A command decides on what it reads inside its own transaction, never on objects
    # left over from an earlier one.
    session.expire_all()
    session.connection(execution_options={WRITE_OPTION: True})


def command(fn: Callable[..., T]) -> Callable[..., T]:
    """Mark a domain function that writes: it runs in a write transaction of its own,
    and a failure (a refused command included) rolls it back at once, so the database
    is never left locked or half-changed by an error the caller forgot to handle."""

    @functools.wraps(fn)
    def wrapper(session: Session, *args: Any, **kwargs: Any) -> T:
        begin_write(session)
        try:
            return fn(session, *args, **kwargs)
        except BaseException:
            session.rollback()
            raise

    return wrapper


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def create_schema(engine: Engine) -> None:
    """Create every table from the models (tests; `tsunagu init` uses Alembic)."""
    Base.metadata.create_all(engine)


def drop_schema(engine: Engine) -> None:
    Base.metadata.drop_all(engine)


def upgrade_database(url: str) -> None:
    """Create the schema in an empty database, or bring an existing one to the newest migration.

    A database made by `create_schema` (tables, no `alembic_version`) is stamped as being at the
    newest migration if its tables match the models, and refused otherwise. Concurrent callers
    queue up (PostgreSQL advisory lock; SQLite write lock) and all but the first find nothing to do.
    """
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect, pool, text

    from engine.migrations import ADVISORY_LOCK_KEY, alembic_config, sqlite_foreign_keys_off

    engine = make_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            sqlite_foreign_keys_off(conn)
            conn.execution_options(**{WRITE_OPTION: True})  # SQLite: BEGIN IMMEDIATE
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
                cfg = alembic_config(connection=conn)
                tables = set(inspect(conn).get_table_names())
                if "alembic_version" not in tables and tables & set(Base.metadata.tables):
                    diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                            Base.metadata)
                    if diff:
                        raise RuntimeError(
                            "the database has tables but no migration history, and they differ from the "
                            f"models; stamp it by hand (python -m engine.migrations stamp REV): {diff!r}")
                    command.stamp(cfg, "head")
                else:
                    command.upgrade(cfg, "head")
                if conn.dialect.name == "sqlite":
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration left rows with dangling foreign keys: {broken[:10]!r}")
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The migration the database is at; None if it has none (empty, or made by `create_schema`)."""
    from alembic.migration import MigrationContext
    from sqlalchemy import pool

    engine = make_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
