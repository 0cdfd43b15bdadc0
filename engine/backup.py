"""Backup and restore of the whole database (`tsunagu backup PATH`, `tsunagu restore PATH`).

SQLite: SQLite's online backup API copies a consistent snapshot page by page, so a backup may be
taken while the server runs; restore copies the file back the same way.
PostgreSQL: `pg_dump --format=custom` (one consistent snapshot, also while running) and
`pg_restore` in a single transaction, with the client tools from PATH or /usr/lib/postgresql/*/bin.
Restore goes into an empty database only, unless forced: it never mixes two databases' rows.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import inspect, pool
from sqlalchemy.engine import URL, make_url

from engine.db import make_engine


class BackupError(Exception):
    """A backup or restore that could not be done; the message says why."""


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(url.database)


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name),
                         reverse=True):
        candidate = Path(bindir) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise BackupError(f"{name} was not found on PATH or in /usr/lib/postgresql/*/bin: install the PostgreSQL "
                      "client tools (Debian: postgresql-client)")


def _pg_args(url: URL) -> tuple[list[str], dict[str, str]]:
    """libpq connection options for the tools; the password goes in the environment, not argv."""
    args = ["--dbname", url.database or "postgres"]
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _run(cmd: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{Path(cmd[0]).name} failed (exit {result.returncode}): {result.stderr.strip()}")


def table_names(database_url: str) -> list[str]:
    engine = make_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return sorted(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def backup(database_url: str, target: Path) -> None:
    """Write a backup of the database to `target` (a SQLite file, or a pg_dump custom-format archive)."""
    url = make_url(database_url)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if url.get_backend_name() == "sqlite":
        source = _sqlite_path(url)
        if not source.exists():
            raise BackupError(f"no database at {source}")
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        src = sqlite3.connect(source)
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        finally:
            dst.close()
            src.close()
        partial.replace(target)  # a crash half-way never leaves a truncated backup under the real name
    elif url.get_backend_name() == "postgresql":
        args, env = _pg_args(url)
        _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "--file", str(target),
              *args], env)
    else:
        raise BackupError(f"backup of {url.get_backend_name()} databases is not supported")


def restore(database_url: str, source: Path, force: bool = False) -> None:
    """Restore a backup into the database, which must be empty unless `force` (then it is replaced)."""
    url = make_url(database_url)
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"no backup at {source}")
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupError(f"restore into {backend} databases is not supported")
    if backend == "sqlite" and not _sqlite_path(url).exists():
        existing: list[str] = []
    else:
        existing = table_names(database_url)
    if existing and not force:
        raise BackupError(f"the target database is not empty ({len(existing)} tables, e.g. {existing[0]}); "
                          "restore into an empty database, or pass --force to replace its contents")
    if backend == "sqlite":
        path = _sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        if src.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            src.close()
            raise BackupError(f"{source} is not a sound SQLite database")
        dst = sqlite3.connect(path)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=WAL")
        finally:
            dst.close()
            src.close()
    else:
        args, env = _pg_args(url)
        cmd = [_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
        if existing:
            cmd += ["--clean", "--if-exists"]
        _run([*cmd, *args, str(source)], env)
