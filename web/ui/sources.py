"""The administrators' page of message sources (送信元): list, register (the secret is shown
once, on the page that answers the registration), remove. Routes of the `ui_admin` blueprint."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, g, redirect, render_template, request, url_for

from engine.casework.messages import default_group
from engine.errors import Conflict, Invalid
from engine.security import sources
from web.extensions import db, engine_env, now
from web.ui.admin import bp
from web.ui.auth import login_required
from web.ui.i18n import t


def _page(created: Any = None, status: int = 200, form: Any = None) -> tuple[str, int]:
    rows = sources.list_sources(db.session, g.actor)
    org = engine_env().org
    return render_template("ui/admin_sources.html", sources=rows, processes=sources.process_keys(db.session),
                           groups=org.groups, group_info={gr.id: gr for gr in org.groups},
                           default_group=default_group(org), created=created, form=form or {},
                           active="sources"), status


@bp.route("/admin/sources")
@login_required
def sources_page() -> Any:
    return _page()


@bp.route("/admin/sources", methods=["POST"])
@login_required
def add_source() -> Any:
    form = request.form
    try:
        created = sources.add_source(db.session, engine_env(), g.actor, form.get("name", "").strip(), now(),
                                     form.get("process") or None, form.get("group") or None)
    except (Invalid, Conflict) as exc:
        flash(exc.message, "error")
        return _page(status=exc.status, form=form)  # what was typed stays, to be corrected
    # Rendered, not redirected: the secret must not travel in a flash message (the session cookie).
    return _page(created)


@bp.route("/admin/sources/<name>/remove", methods=["POST"])
@login_required
def remove_source(name: str) -> Response:
    sources.remove_source(db.session, g.actor, name, now())
    flash(t("source_removed", name=name), "success")
    return redirect(url_for("ui_admin.sources_page"))
