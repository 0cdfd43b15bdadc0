"""Alembic migrations build exactly the schema of the models, on SQLite and (when
TSUNAGU_TEST_DATABASE_URL is set) PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, pool

from engine.db import create_schema, current_revision, make_engine, upgrade_database
from engine.migrations import alembic_config
from engine.models import Base, Counter, OutboxEvent


def _head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _differences(url: str) -> list:
    engine = make_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_single_head_named_0001_first() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1
    assert [rev.revision for rev in script.walk_revisions()][-1] == "0001"


def test_upgrade_empty_database_matches_models(database_url: str) -> None:
    assert current_revision(database_url) is None
    upgrade_database(database_url)
    assert current_revision(database_url) == _head()
    assert _differences(database_url) == []
    assert _tables(database_url) == set(Base.metadata.tables) | {"alembic_version"}


def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    upgrade_database(database_url)
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(Counter.__table__.insert().values(name="cases-2025", value=7))
    finally:
        engine.dispose()

    upgrade_database(database_url)

    assert current_revision(database_url) == _head()
    assert _differences(database_url) == []
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(Counter.__table__.select()).all() == [("cases-2025", 7)]
    finally:
        engine.dispose()


def test_big_integer_ids_autoincrement(database_url: str) -> None:
    upgrade_database(database_url)
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            ids = [
                conn.execute(OutboxEvent.__table__.insert().values(kind="k", payload={"n": n}, created_at=now,
                                                                   attempts=0)).inserted_primary_key[0]
                for n in range(3)
            ]
        assert ids == [1, 2, 3]
        # INTEGER PRIMARY KEY (the rowid) on SQLite, BIGINT with a sequence on PostgreSQL.
        expected = "INTEGER" if engine.dialect.name == "sqlite" else "BIGINT"
        with engine.connect() as conn:
            for table in ("case_events", "timers", "outbox"):
                (column,) = [c for c in inspect(conn).get_columns(table) if c["name"] == "id"]
                assert str(column["type"]) == expected, table
                if engine.dialect.name == "postgresql":
                    assert "nextval" in str(column["default"]), table
    finally:
        engine.dispose()


def test_database_made_by_create_schema_is_stamped(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        create_schema(engine)
    finally:
        engine.dispose()
    assert current_revision(database_url) is None

    upgrade_database(database_url)

    assert current_revision(database_url) == _head()
    assert _differences(database_url) == []


def test_database_with_foreign_tables_but_no_history_is_refused(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            Base.metadata.tables["groups"].create(conn)
    finally:
        engine.dispose()

    with pytest.raises(RuntimeError, match="no migration history"):
        upgrade_database(database_url)
    assert current_revision(database_url) is None
