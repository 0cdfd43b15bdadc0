"""Tsunagu's Flask layer: the JSON API (and, later, the staff pages).

`create_app()` binds the database, the engine environment and the clock; views parse
HTTP, call one domain function with plain values, and render.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from engine.clock import Clock
from engine.env import Env
from engine.settings import Settings
from web.extensions import db


def create_app(settings: Settings | None = None, *, clock: Clock | None = None, env: Env | None = None,
               config: dict[str, Any] | None = None) -> Flask:
    settings = settings or Settings()
    app = Flask(__name__)
    app.config.update(
        JSON_AS_ASCII=False,
        API_TITLE="Tsunagu (つなぐ) API",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    app.json.ensure_ascii = False
    if config:
        app.config.update(config)
    app.extensions["tsunagu.settings"] = settings
    app.extensions["tsunagu.env"] = env or Env.from_settings(settings)
    app.extensions["tsunagu.clock"] = clock or Clock()
    db.init_app(app, settings.database_url)

    from web import api

    api.init_app(app)
    return app
