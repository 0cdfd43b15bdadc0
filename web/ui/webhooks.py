"""The outgoing webhooks page (administrators): subscriptions with their state, create (the secret
shown once, on the answer page itself, never in a cookie or a redirect), pause and resume, rotate
the secret, test ping, delete; per subscription the delivery log and dead events with re-send.

Like every page, each view parses the form, calls one domain function, and renders.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, flash, g, redirect, render_template, request, url_for

from engine.errors import Conflict, Invalid
from engine.status import SUBSCRIBABLE_EVENTS
from web.extensions import db, engine_env, now
from web.ui import csrf, errors
from web.ui.auth import load_actor, login_required
from web.ui.i18n import pick, t
from webhooks import subscriptions
from webhooks.destinations import parse_allowed

bp = Blueprint("ui_webhooks", __name__)
bp.before_request(load_actor)
bp.before_request(csrf.protect)
errors.install(bp)

LOG_PAGE = 200


def _allowed():  # noqa: ANN202
    return parse_allowed(engine_env().settings.webhook_allowed_hosts)


def _list(**extra: Any) -> str:
    subs = subscriptions.list_subscriptions(db.session, g.actor)
    return render_template("ui/admin_webhooks.html", subs=subs, counts=subscriptions.counts(db.session, [s.id for s in subs]),
                           events=SUBSCRIBABLE_EVENTS, actor=g.actor, active="webhooks", **extra)


def _detail(sub_id: int, **extra: Any) -> str:
    sub = subscriptions.get_subscription(db.session, g.actor, sub_id)
    log = subscriptions.attempts(db.session, g.actor, sub_id, limit=LOG_PAGE, newest_first=True)
    dead = subscriptions.deliveries(db.session, g.actor, sub_id, status="dead", limit=LOG_PAGE)
    return render_template("ui/admin_webhook.html", sub=sub, log=log, dead=dead, max=LOG_PAGE, actor=g.actor,
                           active="webhooks", **extra)


@bp.route("/admin/webhooks")
@login_required
def webhooks_page() -> Any:
    return _list()


@bp.route("/admin/webhooks", methods=["POST"])
@login_required
def create() -> Any:
    form = {"url": request.form.get("url", ""), "events": request.form.getlist("events"),
            "description": request.form.get("description", "")}
    try:
        sub, secret = subscriptions.create_subscription(db.session, g.actor, form["url"], form["events"],
                                                        form["description"], now(), _allowed())
    except Invalid as exc:
        detail = "; ".join(f"{k}: {v}" for k, v in (exc.fields or {}).items())
        return _list(error=f"{pick(exc.message)}（{detail}）" if detail else pick(exc.message), form=form), 422
    flash(t("webhook_created"), "success")
    return _list(secret=secret, secret_for=sub.id)


@bp.route("/admin/webhooks/<id:sub_id>")
@login_required
def webhook_page(sub_id: int) -> Any:
    return _detail(sub_id)


@bp.route("/admin/webhooks/<id:sub_id>/status", methods=["POST"])
@login_required
def set_status(sub_id: int) -> Response:
    try:
        subscriptions.change_subscription(db.session, g.actor, sub_id, now(), _allowed(),
                                          status=request.form.get("status"))
        flash(t("webhook_saved"), "success")
    except Invalid as exc:
        flash(pick(exc.message), "error")
    return redirect(url_for("ui_webhooks.webhooks_page"))


@bp.route("/admin/webhooks/<id:sub_id>/rotate", methods=["POST"])
@login_required
def rotate(sub_id: int) -> Any:
    grace = timedelta(hours=engine_env().settings.webhook_rotation_grace_hours)
    sub, secret = subscriptions.rotate_secret(db.session, g.actor, sub_id, now(), grace)
    return _detail(sub_id, secret=secret, rotated_until=sub.previous_valid_until)


@bp.route("/admin/webhooks/<id:sub_id>/ping", methods=["POST"])
@login_required
def ping(sub_id: int) -> Response:
    try:
        subscriptions.ping(db.session, g.actor, sub_id, now())
        flash(t("webhook_pinged"), "success")
    except Conflict as exc:
        flash(pick(exc.message), "error")
    return redirect(url_for("ui_webhooks.webhook_page", sub_id=sub_id))


@bp.route("/admin/webhooks/<id:sub_id>/delete", methods=["POST"])
@login_required
def delete(sub_id: int) -> Response:
    subscriptions.delete_subscription(db.session, g.actor, sub_id, now())
    flash(t("webhook_deleted"), "success")
    return redirect(url_for("ui_webhooks.webhooks_page"))


@bp.route("/admin/webhooks/<id:sub_id>/events/<id:event_id>/resend", methods=["POST"])
@login_required
def resend(sub_id: int, event_id: int) -> Response:
    try:
        subscriptions.resend(db.session, g.actor, sub_id, event_id, now())
        flash(t("webhook_resent", event=event_id), "success")
    except Conflict as exc:
        flash(pick(exc.message), "error")
    return redirect(url_for("ui_webhooks.webhook_page", sub_id=sub_id))
