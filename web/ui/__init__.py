"""The staff web pages (Japanese first, English switchable), on the same domain functions as
the JSON API.

`init_app(app)` sets up sign-in sessions, CSRF, the message catalogue, the pages' error pages,
serves the bpmn-js viewer from node_modules (installed by `npm ci`; no CDN), and the site icon at
/favicon.ico (web/static/favicon.svg, packed by scripts/make-favicon.py).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask, abort, g, request, send_from_directory

from engine.security import sessions
from engine.settings import ROOT
from web.ui import csrf, i18n

# Files of the bpmn-js package the case page uses; nothing else under node_modules is served.
BPMN_JS_FILES = frozenset({
    "bpmn-navigated-viewer.production.min.js",
    "assets/diagram-js.css",
    "assets/bpmn-js.css",
})


def node_modules() -> Path:
    return Path(os.environ.get("TSUNAGU_NODE_MODULES", ROOT / "node_modules"))


def _fromiso(value: Any) -> Any:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return None


def init_app(app: Flask) -> None:
    from web.ui import (  # noqa: F401 - sources adds routes to admin.bp; household, casefile, case_list to views.bp
        admin,
        auth,
        case_list,
        casefile,
        errors,
        forms,
        household,
        modeler,
        printing,
        reports,
        scheme,
        sources,
        views,
        webhooks,
    )

    auth.configure(app)
    errors.install_app(app)
    for blueprint in (auth.bp, views.bp, admin.bp, webhooks.bp, scheme.bp, reports.bp, modeler.bp, modeler.data,
                      printing.bp):
        app.register_blueprint(blueprint)

    app.jinja_env.globals.update(
        t=i18n.t, lang=i18n.lang, csrf_token=csrf.token, jst=i18n.jst, age=i18n.age, group_name=i18n.group_name,
        pick=i18n.pick, duration_text=forms.duration_text, action_label=i18n.action_label,
        ja_attr=i18n.ja_attr, describe_device=sessions.describe_device,
    )

    app.jinja_env.filters["fromiso"] = _fromiso
    app.jinja_env.filters["ja"] = i18n.ja

    @app.context_processor
    def _page_context() -> dict[str, Any]:
        if request.blueprint not in ("ui", "ui_auth", "ui_admin", "ui_modeler", "ui_scheme", "ui_reports", "ui_webhooks",
                                     "ui_print"):
            return {}
        return {"actor": g.get("actor")}

    @app.route("/vendor/bpmn-js/<path:filename>")
    def bpmn_js(filename: str) -> Any:
        if filename not in BPMN_JS_FILES:
            abort(404)
        return send_from_directory(node_modules() / "bpmn-js" / "dist", filename, max_age=3600)

    @app.route("/favicon.ico")
    def favicon() -> Any:
        # Browsers ask for /favicon.ico on every site whatever the page links to; a day of caching
        # keeps them from asking again on every page.
        return send_from_directory(Path(app.static_folder or ""), "favicon.ico", mimetype="image/vnd.microsoft.icon",
                                   max_age=86400)
