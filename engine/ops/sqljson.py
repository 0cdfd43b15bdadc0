"""JSON built by the database: a row as a JSON object's text, and a stored UTC time as the
ISO 8601 text Python's `datetime.isoformat()` gives it, in SQLite's and PostgreSQL's own words;
and the key by which a statement joins the rows it chose back to their table.

For answers of many rows (the API's queue holds up to 1,000 tasks): building a Python object
per row and encoding it costs several times what the database spends composing the same text
in C, and the answer is then the rows' texts joined.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import String, column, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

_KEY = re.compile(r"[a-z_][a-z0-9_]*\Z")


class _JsonObject(FunctionElement[str]):
    type = String()
    inherit_cache = True
    name = "json_object"


class _IsoUTC(FunctionElement[str]):
    type = String()
    inherit_cache = True
    name = "iso_utc"


class _RowKey(FunctionElement[Any]):
    inherit_cache = True
    name = "row_key"


def json_object(**fields: ColumnElement[Any] | None) -> ColumnElement[str]:
    """The JSON object of `fields` (text, a string per text value, null for SQL NULL or None),
    its keys in the order given."""
    args: list[Any] = []
    for key, value in fields.items():
        if not _KEY.match(key):  # keys are written into the statement, never bound
            raise ValueError(f"not a plain JSON key: {key!r}")
        args += [literal_column(f"'{key}'"), literal_column("NULL") if value is None else value]
    return _JsonObject(*args)


def iso_utc(column: ColumnElement[Any]) -> ColumnElement[str]:
    """A UTCDateTime column as `datetime.isoformat()` writes the aware time it holds:
    2026-12-01T09:30:00+00:00, or 2026-12-01T09:30:00.250000+00:00 with microseconds; NULL stays NULL."""
    return _IsoUTC(column)


def row_key(model: Any) -> ColumnElement[Any]:
    """A key of the rows of `model` (a mapped class or a table) by which one statement joins the
    rows it chose (a page) back to the table: on SQLite the rowid, one lookup in the table's own
    b-tree (its text primary key would first be looked up in the key's index), elsewhere the
    primary key. Only within a statement: a VACUUM may renumber the rowids of a text-keyed table."""
    table = getattr(model, "__table__", model)
    (key,) = table.primary_key.columns
    return _RowKey(column("rowid", _selectable=table), key)


@compiles(_RowKey, "sqlite")
def _sqlite_row_key(element: _RowKey, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses.clauses[0], **kw)


@compiles(_RowKey)
def _default_row_key(element: _RowKey, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses.clauses[1], **kw)


@compiles(_JsonObject, "sqlite")
def _sqlite_object(element: _JsonObject, compiler: Any, **kw: Any) -> str:
    return f"json_object({compiler.process(element.clauses, **kw)})"


@compiles(_JsonObject, "postgresql")
def _postgresql_object(element: _JsonObject, compiler: Any, **kw: Any) -> str:
    return f"json_build_object({compiler.process(element.clauses, **kw)})::text"


@compiles(_IsoUTC, "sqlite")
def _sqlite_iso(element: _IsoUTC, compiler: Any, **kw: Any) -> str:
    # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff', always with six digits
    # (a time without them, written by hand, is read too); isoformat() leaves out zero microseconds.
    x = compiler.process(element.clauses, **kw)
    return (f"(CASE WHEN substr({x}, 20) IN ('', '.000000') THEN replace(substr({x}, 1, 19), ' ', 'T') "
            f"ELSE replace({x}, ' ', 'T') END || '+00:00')")


@compiles(_IsoUTC, "postgresql")
def _postgresql_iso(element: _IsoUTC, compiler: Any, **kw: Any) -> str:
    # The column is a timestamp without time zone that holds UTC.
    x = compiler.process(element.clauses, **kw)
    return (f"(to_char({x}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN to_char({x}, 'US') = '000000' "
            f"THEN '' ELSE '.' || to_char({x}, 'US') END || '+00:00')")
