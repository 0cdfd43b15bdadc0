"""Backup and restore of the whole database (`tsunagu backup PATH`, `tsunagu restore PATH`).

SQLite: SQLite's online backup API copies a consistent snapshot page by page, so a backup may be
taken while the server runs; restore copies the file back the same way.
PostgreSQL: `pg_dump --format=custom` (one consistent snapshot, also while running) and
`pg_restore` in a single transaction, with the client tools from PATH or /usr/lib/postgresql/*/bin.
Restore goes into an empty database only, unless forced: it never mixes two databases' rows.

Documents attached to cases live outside the database (engine.casework.attachments): a backup copies
them into a directory beside the backup file, `<backup>.attachments/`, and a restore copies
them back into the attachments directory. The database is copied first, then the files: a
document's file is written before its row is committed, so every row in the copied database
has its file in the directory copied after it (a document removed in between excepted: its
row says so).
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

from engine.casework.attachments import PARTIAL_PREFIX
from engine.ops.db import make_engine


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


def files_dir(backup_path: Path) -> Path:
    """Where a backup keeps the attachments' files: beside it, `<backup>.attachments/`."""
    backup_path = Path(backup_path)
    return backup_path.with_name(backup_path.name + ".attachments")


def _stored_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith(PARTIAL_PREFIX))


def _copy_files(source: Path, target: Path) -> int:
    """Copy the stored files of `source` into a fresh `target` (written beside it, then renamed
    into place, so a crash never leaves a half-copied directory under the real name)."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    files = _stored_files(source)
    for path in files:
        shutil.copy2(path, partial / path.name)
    shutil.rmtree(target, ignore_errors=True)
    partial.replace(target)
    return len(files)


def backup(database_url: str, target: Path, attachments_dir: Path | None = None) -> int:
    """Write a backup of the database to `target` (a SQLite file, or a pg_dump custom-format archive)
    and, given the attachments directory, its files to `files_dir(target)`. Returns how many
    files were copied."""
    _backup_database(database_url, target)
    if attachments_dir is None:
        return 0
    return _copy_files(Path(attachments_dir), files_dir(target))


def _backup_database(database_url: str, target: Path) -> None:
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


def restore(database_url: str, source: Path, force: bool = False, attachments_dir: Path | None = None) -> int:
    """Restore a backup into the database, which must be empty unless `force` (then it is replaced),
    and, given the attachments directory, the backup's files into it (a backup taken without
    files restores none). Returns how many files were restored."""
    _restore_database(database_url, source, force)
    saved = files_dir(source)
    if attachments_dir is None or not saved.is_dir():
        return 0
    directory = Path(attachments_dir)
    files = _stored_files(saved)
    if files:
        directory.mkdir(parents=True, exist_ok=True)
    for path in files:
        # Beside the target first, then renamed: a reader never sees a half-written document.
        partial = directory / f"{PARTIAL_PREFIX}{path.name}.part"
        shutil.copy2(path, partial)
        partial.replace(directory / path.name)
    return len(files)


def _restore_database(database_url: str, source: Path, force: bool) -> None:
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
