"""Tsunagu's Flask layer: the JSON API (and, later, the staff pages).

`create_app()` binds the database, the engine environment and the clock; views parse
HTTP, call one domain function with plain values, and render.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from engine.clock import Clock
from engine.env import Env
from engine.settings import Settings
from engine.workflow.limits import json_text_depth_exceeds
from web.extensions import db


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing text nested too deeply before parsing it: `request.get_json()`
    then answers 400 (ValueError) instead of failing with a RecursionError."""

    ensure_ascii = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if json_text_depth_exceeds(s):
            raise ValueError("JSON nested too deeply")
        return super().loads(s, **kwargs)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None, env: Env | None = None,
               config: dict[str, Any] | None = None) -> Flask:
    settings = settings or Settings()
    app = Flask(__name__)
    app.json = JSONProvider(app)
    app.config.update(
        JSON_AS_ASCII=False,
        API_TITLE="Tsunagu (つなぐ) API",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    if config:
        app.config.update(config)
    app.extensions["tsunagu.settings"] = settings
    app.extensions["tsunagu.env"] = env or Env.from_settings(settings)
    app.extensions["tsunagu.clock"] = clock or Clock()
    db.init_app(app, settings.database_url)
    from web.converters import IdConverter

    app.url_map.converters["id"] = IdConverter

    from web import api

    api.init_app(app)
    from web import ui, webhooks
    from web.ui import i18n

    i18n.init_app(app)  # Flask-Babel: the pages' catalogues, the session's language
    webhooks.init_app(app)

    ui.init_app(app)
    _bind_origin(app)
    _refuse_nul(app)
    _security_headers(app)
    _trust_proxies(app, settings.trusted_proxies)
    return app


def _trust_proxies(app: Flask, count: int) -> None:
    """Behind `count` reverse proxies, take the client address and scheme from as many
    X-Forwarded-For / X-Forwarded-Proto entries as there are trusted proxies, and no further
    (an entry a client wrote itself is never believed). With 0 the headers are ignored."""
    if count > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)


def _refuse_nul(app: Flask) -> None:
    """NUL characters in the path, the query or a form: PostgreSQL cannot store or compare them,
    so they are refused before any view runs, on every database alike (a path: 404, since
    nothing can be named so; a parameter: 422 naming it, or 400 on the pages)."""
    from flask import abort, request

    from web.api import error_response

    @app.before_request
    def _no_nul() -> Any:
        if "\x00" in request.path:
            abort(404)
        for values in (request.args, request.form):
            for key, value in values.items(multi=True):
                if "\x00" in key or "\x00" in value:
                    if not request.path.startswith("/api"):
                        abort(400)
                    name = key.replace("\x00", "\\0")
                    return error_response(422, f"{name} に NUL 文字が含まれています / {name} contains a NUL character",
                                          {name: "contains a NUL character"})
        return None


def _bind_origin(app: Flask) -> None:
    """The audit trail records where each request came from (a plain value for the engine)."""
    from flask import request

    from engine.security import audit

    @app.before_request
    def _origin() -> None:
        audit.set_origin(request.remote_addr)


# Scripts and styles come only from this server (bpmn-js included); bpmn-js sets style
# attributes on SVG nodes, hence 'unsafe-inline' for styles alone.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")


def _security_headers(app: Flask) -> None:
    @app.after_request
    def _headers(response):  # noqa: ANN001, ANN202
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if response.mimetype in ("text/html", "application/json", "text/csv"):
            # Case data must not linger in shared caches or the browser's back-forward cache.
            h.setdefault("Cache-Control", "no-store")
        return response
