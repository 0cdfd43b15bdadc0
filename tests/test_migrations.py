"""Alembic migrations build exactly the schema of the models, on SQLite and (when
TSUNAGU_TEST_DATABASE_URL is set) PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, pool

from engine.migrations import alembic_config
from engine.models import Base, Counter, OutboxEvent
from engine.ops.db import create_schema, current_revision, make_engine, upgrade_database


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


def _old_digest(seq: int, at: datetime, action: str, prev: str) -> str:
    """A record's hash as written before the trail had chains (0003–0009)."""
    import hashlib
    import json

    body = json.dumps([seq, at.isoformat(), None, "kacho", action, None, None, "cli", None, prev],
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def test_a_one_chain_trail_verifies_after_it_is_split_into_chains(database_url: str) -> None:
    from alembic import command
    from sqlalchemy import text

    from engine.models import User
    from engine.ops.db import make_session_factory
    from engine.security import audit

    engine = make_engine(database_url, poolclass=pool.NullPool)
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(connection=conn), "0009")
        with engine.begin() as conn:
            prev = audit.GENESIS
            for seq in (1, 2, 3):
                digest = _old_digest(seq, now, "user.change", prev)
                conn.execute(text("INSERT INTO audit_records (seq, at, actor_id, actor_name, action, origin, prev_hash, "
                                  "hash) VALUES (:seq, :at, NULL, 'kacho', 'user.change', 'cli', :prev, :hash)"),
                             {"seq": seq, "at": now.replace(tzinfo=None), "prev": prev, "hash": digest})
                prev = digest
            conn.execute(text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 3, :hash)"), {"hash": prev})
        old_anchor = audit.Anchor(3, prev, "before the upgrade", 1)

        upgrade_database(database_url)

        assert _differences(database_url) == []
        factory = make_session_factory(engine)
        with factory() as session:
            assert audit.verify(session, anchors=[old_anchor]).ok  # the anchor of before still matches
            # New records go on (chain 1 for this actor or another chain), after the old ones.
            for name in ("kacho", "designer", "someone"):
                audit.record(session, User(id=None, name=name), audit.Action.USER_CHANGE, now)
            session.commit()
            result = audit.verify(session, anchors=[old_anchor])
            assert result.ok and result.records == 6
            assert [r.seq for r in audit.search(session)] == [6, 5, 4, 3, 2, 1]
            session.execute(text("UPDATE audit_records SET action = 'case.read' WHERE seq = 2"))
            session.commit()
            broken = audit.verify(session)
            assert not broken.ok and broken.seq == 2 and "altered" in broken.problem
    finally:
        engine.dispose()


def test_the_search_index_is_built_from_the_cases_search_text(api, settings) -> None:  # noqa: ANN001
    """0025 fills the search index from the cases there are: they are found at once."""
    from alembic import command
    from sqlalchemy import select

    from engine.casework import search
    from engine.models import Case, CaseSearchGram, CaseSearchText
    from engine.ops.db import make_session_factory

    client = api("caseworker")
    opened = [client.post("/api/cases", json={"process": "multi_agency", "data": {"summary": s}}).json
              for s in ("家賃の滞納", "ごみ屋敷の苦情")]
    client.put(f"/api/cases/{opened[0]['id']}/household", json={"members": [{"name": "森 一郎", "kana": "モリ イチロウ"}]})
    upgrade_database(settings.database_url)  # the tests' schema is made by create_schema: stamped here
    engine = make_engine(settings.database_url, poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(connection=conn), "0024")
        assert not {"case_search", "case_search_grams"} & _tables(settings.database_url)
        upgrade_database(settings.database_url)
        assert _differences(settings.database_url) == []
        with make_session_factory(engine)() as s:
            texts = dict(s.execute(select(Case.id, Case.search_text)).all())
            held = dict(s.execute(select(CaseSearchText.case_id, CaseSearchText.doc)).all())
            assert {c: t for c, t in texts.items() if c in held} == dict(
                s.execute(select(CaseSearchText.case_id, CaseSearchText.text)).all())
            for case_id, doc in held.items():
                pieces = set(s.scalars(select(CaseSearchGram.gram).where(CaseSearchGram.doc == doc)))
                assert pieces == search.grams(texts[case_id])
    finally:
        engine.dispose()
    found = client.get("/api/cases", query_string={"q": "いちろう 滞納"})
    assert [c["number"] for c in found.json] == [opened[0]["number"]]
