"""Fixtures: a fresh database per test (SQLite file, or PostgreSQL when
TSUNAGU_TEST_DATABASE_URL points at a server), the deployed diagrams, a controllable
clock, and the domain's personas."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from engine.clock import FrozenClock
from engine.env import Env
from engine.models import User
from engine.ops.db import create_schema, make_engine, make_session_factory
from engine.security import users
from engine.settings import ROOT, Settings
from engine.workflow import specs

PG_URL = os.environ.get("TSUNAGU_TEST_DATABASE_URL")


def _fresh_database_url(tmp_path: Path) -> tuple[str, callable]:
    if not PG_URL:
        return f"sqlite:///{tmp_path / 'tsunagu.db'}", lambda: None
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    url, drop = _fresh_database_url(tmp_path)
    yield url
    drop()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # Attached documents go to the test's own directory, never the project's var/.
    return Settings(database_url=database_url, processes_dir=ROOT / "processes", forms_dir=ROOT / "forms",
                    config_dir=ROOT / "config", attachments_dir=tmp_path / "attachments")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def env(settings: Settings) -> Env:
    return Env.from_settings(settings)


def _populate(url: str, settings: Settings, env: Env, now: datetime) -> None:
    engine = make_engine(url)
    create_schema(engine)
    with make_session_factory(engine)() as session:
        users.sync_groups(session, env.org)
        specs.deploy(session, specs.read_sources(settings.processes_dir, settings.forms_dir), env.org, now)
    engine.dispose()


# Schema, groups and the deployed diagrams are the same for every test with the same sources
# and clock, and building them (deploy lints and parses every diagram) costs about a second:
# built once per pass as a template database, then copied for each test.
_TEMPLATES: dict[tuple[Any, ...], str] = {}


def _template(settings: Settings, env: Env, now: datetime) -> str:
    key = (settings.processes_dir, settings.forms_dir, settings.config_dir, now)
    if key not in _TEMPLATES:
        if PG_URL:
            name = f"t_template_{uuid.uuid4().hex[:12]}"
            with _admin().connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            _populate(make_url(PG_URL).set(database=name).render_as_string(hide_password=False), settings, env, now)
            _TEMPLATES[key] = name
        else:
            path = Path(tempfile.mkdtemp(prefix="tsunagu-template-")) / "template.db"
            _populate(f"sqlite:///{path}", settings, env, now)
            _TEMPLATES[key] = str(path)
    return _TEMPLATES[key]


def _copy_template(template: str, url: str) -> None:
    target = make_url(url)
    if PG_URL:
        with _admin().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{target.database}" TEMPLATE "{template}"'))
    else:
        # The template's engine was disposed, so its write-ahead log is checkpointed into the file.
        shutil.copyfile(template, target.database)


def pytest_sessionfinish(session: pytest.Session) -> None:
    for template in _TEMPLATES.values():
        if PG_URL:
            with _admin().connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)'))
        else:
            shutil.rmtree(Path(template).parent, ignore_errors=True)
    _TEMPLATES.clear()


def _admin():  # noqa: ANN202
    global _ADMIN
    if _ADMIN is None:
        _ADMIN = create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    return _ADMIN


_ADMIN = None


@pytest.fixture
def session_factory(settings: Settings, env: Env, clock: FrozenClock) -> Iterator[sessionmaker[Session]]:
    _copy_template(_template(settings, env, clock.now()), settings.database_url)
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    yield factory
    engine.dispose()


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as s:
        yield s


@dataclass
class Personas:
    """The people of DOMAIN.md who use the system in tests."""

    caseworker: User  # referring caseworker at the 地域包括支援センター
    secretariat: User  # secretariat member (事務局担当者, 地域共生課)
    lead: User  # coordination lead (連携責任者)
    supervisor: User  # supervisor of the secretariat
    outsider: User  # a caseworker at another agency with no link to the case
    elder_care: User  # 長寿安心課 staff, invited to support meetings
    admin: User  # system administrator (地域共生課), manages users; sees no case by that role
    tokens: dict[str, str]


@pytest.fixture
def personas(session: Session, clock: FrozenClock) -> Personas:
    now = clock.now()
    made = {
        "caseworker": users.add_user(session, "hokatsu.sato", ["hokatsu-center"], ["staff"], now, "佐藤 花子"),
        "secretariat": users.add_user(session, "kyosei.tanaka", ["secretariat", "chiiki-kyosei"], ["secretariat"],
                                      now, "田中 一郎"),
        "lead": users.add_user(session, "jicho.yamada", ["coordination-lead"], ["coordination_lead"], now, "山田 次長"),
        "supervisor": users.add_user(session, "kyosei.kimura", ["secretariat", "chiiki-kyosei"],
                                     ["secretariat", "supervisor"], now, "木村 課長"),
        "outsider": users.add_user(session, "wakamono.ito", ["wakamono-sodan"], ["staff"], now, "伊藤 健"),
        "elder_care": users.add_user(session, "choju.suzuki", ["choju-anshin"], ["staff"], now, "鈴木 恵"),
        "admin": users.add_user(session, "kanri.kato", ["jinken-seisaku"], ["admin"], now, "加藤 管理者"),
    }
    tokens = {key: users.issue_token(session, user, now) for key, user in made.items()}
    session.commit()
    return Personas(**made, tokens=tokens)


@pytest.fixture
def app(settings: Settings, env: Env, clock: FrozenClock, session_factory: sessionmaker[Session]):  # noqa: ANN201
    from web import create_app

    # Tests move the clock by days between a user's requests; the inactivity limit is
    # tested on its own (tests/ui/test_pages.py), with the production value.
    return create_app(settings, clock=clock, env=env,
                      config={"TESTING": True, "SESSION_IDLE_TIMEOUT": timedelta(days=365)})


class ApiClient:
    """A test client speaking as one persona."""

    def __init__(self, client, token: str) -> None:  # noqa: ANN001
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, url: str, **kw):  # noqa: ANN003, ANN201
        return self.client.get(url, headers=self.headers, **kw)

    def post(self, url: str, json=None, **kw):  # noqa: ANN001, ANN003, ANN201
        return self.client.post(url, json=json, headers=self.headers, **kw)

    def put(self, url: str, json=None, **kw):  # noqa: ANN001, ANN003, ANN201
        return self.client.put(url, json=json, headers=self.headers, **kw)

    def patch(self, url: str, json=None, **kw):  # noqa: ANN001, ANN003, ANN201
        return self.client.patch(url, json=json, headers=self.headers, **kw)

    def delete(self, url: str, **kw):  # noqa: ANN003, ANN201
        return self.client.delete(url, headers=self.headers, **kw)


@pytest.fixture
def api(app, personas: Personas):  # noqa: ANN001, ANN201
    """api("caseworker").post(...): a client per persona."""
    client = app.test_client()
    return lambda who: ApiClient(client, personas.tokens[who])
