"""Flask extensions bound with init_app: the database session per request; the clock and the
page sessions' inactivity limit, as the pages and the API both read them."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, current_app, g
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import Clock
from engine.env import Env
from engine.ops.db import make_engine, make_session_factory

# app.extensions key: renders an HTTP error outside /api (web.ui installs its error page there)
PAGE_ERRORS = "tsunagu.page_errors"
# What a multipart upload may carry beyond the file itself (its headers, the CSRF field).
UPLOAD_OVERHEAD = 64 * 1024


class Database:
    def init_app(self, app: Flask, url: str) -> None:
        engine = make_engine(url, serving=True)
        app.extensions["tsunagu.db_engine"] = engine
        app.extensions["tsunagu.session_factory"] = make_session_factory(engine)
        app.teardown_appcontext(self._close)

    @property
    def factory(self) -> sessionmaker[Session]:
        return current_app.extensions["tsunagu.session_factory"]

    @property
    def session(self) -> Session:
        if "db_session" not in g:
            g.db_session = self.factory()
        return g.db_session

    @staticmethod
    def _close(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


db = Database()


def engine_env() -> Env:
    return current_app.extensions["tsunagu.env"]


def now():  # noqa: ANN201
    clock: Clock = current_app.extensions["tsunagu.clock"]
    return clock.now()


def session_idle_timeout() -> timedelta:
    """How long a page session lasts without a request (app config SESSION_IDLE_TIMEOUT, set
    from TSUNAGU_IDLE_MINUTES; 30 minutes by default)."""
    return current_app.config.get("SESSION_IDLE_TIMEOUT") or timedelta(minutes=30)
