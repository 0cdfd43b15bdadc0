"""JSON composed by the database (engine.ops.sqljson): the same text on SQLite and PostgreSQL as
Python's own json and isoformat() give."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text

from engine.models import UTCDateTime
from engine.ops import sqljson

_META = MetaData()
_ROWS = Table("sqljson_rows", _META, Column("id", Integer, primary_key=True), Column("at", UTCDateTime),
              Column("text", String(200)))

_KEYED = Table("sqljson_keyed", _META, Column("id", String(36), primary_key=True), Column("rank", Integer))

TIMES = [
    datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
    datetime(2026, 12, 1, 9, 30, 0, 250000, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2027, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 6, 1, 0, 0, 0, 120, tzinfo=UTC) - timedelta(days=1),
]
TEXTS = ["豊中市 地域共生課", 'quote " and \\ backslash', "tab\tand\nnewline", "", None]


@pytest.fixture
def rows(session):  # noqa: ANN001, ANN201
    _META.create_all(session.connection())
    session.execute(insert(_ROWS), [{"id": i, "at": at, "text": t} for i, (at, t) in enumerate(zip(TIMES, TEXTS, strict=True))])
    session.execute(insert(_ROWS), [{"id": 99, "at": None, "text": None}])
    return session


def test_a_stored_utc_time_reads_as_its_isoformat(rows) -> None:  # noqa: ANN001
    got = dict(rows.execute(select(_ROWS.c.id, sqljson.iso_utc(_ROWS.c.at))).all())
    assert [got[i] for i in range(len(TIMES))] == [at.isoformat() for at in TIMES]
    assert got[99] is None
    assert all(datetime.fromisoformat(got[i]) == at for i, at in enumerate(TIMES))


def test_a_row_reads_as_the_json_object_of_its_fields(rows) -> None:  # noqa: ANN001
    got = dict(rows.execute(select(_ROWS.c.id, sqljson.json_object(
        id=_ROWS.c.text, at=sqljson.iso_utc(_ROWS.c.at), nothing=None))).all())
    for i, (at, t) in enumerate(zip(TIMES, TEXTS, strict=True)):
        assert json.loads(got[i]) == {"id": t, "at": at.isoformat(), "nothing": None}
    assert list(json.loads(got[0])) == ["id", "at", "nothing"]
    assert json.loads(got[99]) == {"id": None, "at": None, "nothing": None}


def test_a_key_that_is_not_a_plain_name_is_refused() -> None:
    with pytest.raises(ValueError, match="not a plain JSON key"):
        sqljson.json_object(**{"x') || evil": _ROWS.c.text})


def test_a_time_stored_without_its_fraction_reads_as_its_isoformat(rows) -> None:  # noqa: ANN001
    if rows.bind.dialect.name != "sqlite":
        pytest.skip("only SQLite stores a time as text, which a hand-written row may give without microseconds")
    rows.execute(text("INSERT INTO sqljson_rows (id, at) VALUES (100, '2026-12-01 09:30:00')"))
    got = rows.scalar(select(sqljson.iso_utc(_ROWS.c.at)).where(_ROWS.c.id == 100))
    assert got == datetime(2026, 12, 1, 9, 30, tzinfo=UTC).isoformat()


def test_rows_chosen_by_a_subquery_join_back_by_their_row_key(session) -> None:  # noqa: ANN001
    _META.create_all(session.connection())
    session.execute(insert(_KEYED), [{"id": f"key-{i:03d}", "rank": (i * 37) % 100} for i in range(100)])
    chosen = (select(_KEYED.c.id, sqljson.row_key(_KEYED).label("key")).order_by(_KEYED.c.rank.desc())
              .limit(10).subquery("chosen"))
    joined = (select(_KEYED.c.id, _KEYED.c.rank).select_from(chosen)
              .join(_KEYED, sqljson.row_key(_KEYED) == chosen.c.key).order_by(_KEYED.c.rank.desc()))
    assert session.execute(joined).all() == session.execute(
        select(_KEYED.c.id, _KEYED.c.rank).order_by(_KEYED.c.rank.desc()).limit(10)).all()
    sql = str(joined.compile(session.bind))
    # SQLite: the table's own b-tree by rowid, not its text key's index; elsewhere the primary key.
    assert ("sqljson_keyed.rowid" in sql) == (session.bind.dialect.name == "sqlite")
