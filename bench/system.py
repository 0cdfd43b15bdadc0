"""A fresh Tsunagu database for a benchmark: schema, groups and the deployed processes."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.env import Env
from engine.ops.db import create_schema, make_engine, make_session_factory
from engine.security import users
from engine.settings import Settings
from engine.workflow import specs


@dataclass
class System:
    settings: Settings
    env: Env
    engine: Engine
    factory: sessionmaker[Session]
    # The temporary folder its SQLite database was made in (None: a database it was given).
    folder: Path | None = None

    def dispose(self) -> None:
        """Close its connections and remove the temporary database: a full run makes several GB of
        them (100,000 cases with their workflow state), which would otherwise stay behind."""
        self.engine.dispose()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def fresh_system(database_url: str | None, now: datetime, prefix: str = "tsunagu-bench-") -> System:
    """SQLite in a new temporary folder unless a URL is given (it must point at an empty database)."""
    folder = None if database_url else Path(tempfile.mkdtemp(prefix=prefix))
    url = database_url or f"sqlite:///{folder}/bench.db"
    settings = Settings(database_url=url)
    env = Env.from_settings(settings)
    engine = make_engine(url)
    create_schema(engine)
    factory = make_session_factory(engine)
    with factory() as s:
        users.sync_groups(s, env.org)
        specs.deploy(s, specs.read_sources(settings.processes_dir, settings.forms_dir), env.org, now)
    return System(settings, env, engine, factory, folder)


def snapshot(system: System, prefix: str = "tsunagu-bench-copy-") -> System:
    """A second system over a copy of `system`'s SQLite database as it is now (SQLite's online
    backup, so the copy is consistent even with the first system's connections open): the same
    cases, users and tokens, with an environment of its own (cold caches, as a new process's)."""
    source = system.settings.database_url.split("///", 1)[1]
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    url = f"sqlite:///{folder}/bench.db"
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(url.split("///", 1)[1])) as dst:
        src.backup(dst)
    settings = Settings(database_url=url)
    engine = make_engine(url)
    return System(settings, Env.from_settings(settings), engine, make_session_factory(engine), folder)
