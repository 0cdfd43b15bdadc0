"""A fresh Tsunagu database for a benchmark: schema, groups and the deployed processes."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime

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


def fresh_system(database_url: str | None, now: datetime, prefix: str = "tsunagu-bench-") -> System:
    """SQLite in a new temporary folder unless a URL is given (it must point at an empty database)."""
    url = database_url or f"sqlite:///{tempfile.mkdtemp(prefix=prefix)}/bench.db"
    settings = Settings(database_url=url)
    env = Env.from_settings(settings)
    engine = make_engine(url)
    create_schema(engine)
    factory = make_session_factory(engine)
    with factory() as s:
        users.sync_groups(s, env.org)
        specs.deploy(s, specs.read_sources(settings.processes_dir, settings.forms_dir), env.org, now)
    return System(settings, env, engine, factory)
