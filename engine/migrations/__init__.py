"""Alembic migrations of the schema in `engine.models`.

No alembic.ini is needed: `alembic_config()` builds the configuration in code. The database is
handed to env.py through `Config.attributes` ("connection" or "url"), never through the ini
parser, so URLs containing `%` need no escaping.

Developers: `python -m engine.migrations [--url URL] <alembic command ...>`, e.g.
    python -m engine.migrations --url sqlite:///var/dev.db revision --autogenerate -m "add x"
(the database must be at head first: `python -m engine.migrations --url ... upgrade head`).
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(url: str | None = None, connection=None) -> Config:  # noqa: ANN001
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # versions/0001_initial.py rather than versions/<hash>_initial.py; pass --rev-id for new ones.
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url is not None:
        cfg.attributes["url"] = url
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


# Key of the PostgreSQL advisory lock that serialises concurrent `upgrade_database` calls.
ADVISORY_LOCK_KEY = 0x7453_756E_6167_75  # "tsunagu"


def sqlite_foreign_keys_off(conn: Connection) -> None:
    """Batch migrations on SQLite rebuild tables (copy, drop, rename); with foreign keys enforced
    the drop would cascade or fail. The pragma is ignored inside a transaction, so it goes
    straight to the driver before the migration's transaction begins. No-op on other backends."""
    if conn.dialect.name != "sqlite":
        return
    if conn.in_transaction():
        raise RuntimeError("foreign keys can only be switched off outside a transaction")
    conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
