"""Pages for confidentiality and accounts (issue 3): consent and consented sharing on a case,
user administration, the audit trail search with CSV export, and the caller's account: API
tokens, signed-in sessions (issue 8: each can be ended at once) and their password.

Like every page, each view parses the form, calls one domain function, and renders.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any

from flask import Blueprint, Response, flash, g, redirect, render_template, request, url_for

from engine.casework import cases, writes
from engine.errors import Conflict, Forbidden, Invalid
from engine.security import audit, sessions, users
from engine.status import Role
from web.extensions import db, engine_env, now, session_idle_timeout
from web.ui import csrf, errors
from web.ui.auth import end_current_session, load_actor, login_required, page_session, safe_next
from web.ui.errors import error_message
from web.ui.i18n import JST, action_label, group_name, has_message, jst, pick, t

bp = Blueprint("ui_admin", __name__)
bp.before_request(load_actor)
bp.before_request(csrf.protect)
errors.install(bp)


AUDIT_PAGE = 500


def _case_url(case_id: str) -> str:
    return url_for("ui.case", case_id=case_id)


# ---------------------------------------------------------------- consent and sharing


@bp.route("/cases/<case_id>/consent", methods=["POST"])
@login_required
def record_consent(case_id: str) -> Response:
    try:
        cases.record_consent(db.session, engine_env(), g.actor, case_id, request.form.get("consent"), now())
        flash(t("consent_saved"), "success")
    except Invalid as exc:
        flash(error_message(exc), "error")
    return redirect(_case_url(case_id))


@bp.route("/cases/<case_id>/shares", methods=["POST"])
@login_required
def share(case_id: str) -> Response:
    group = request.form.get("group", "")
    try:
        cases.share_case(db.session, engine_env(), g.actor, case_id, group, request.form.get("purpose", ""), now())
        env = engine_env()
        info = env.org.group(group)
        flash(t("shared", group=info.name if info else group), "success")
    except Conflict:
        flash(t("share_needs_consent"), "error")
    except Invalid as exc:
        flash(error_message(exc), "error")
    return redirect(_case_url(case_id))


# ---------------------------------------------------------------- users


def _require(*roles: str) -> None:
    if not set(roles) & set(g.actor.roles):
        raise Forbidden("not allowed")


GROUP_KINDS = ("lead", "secretariat", "liaison", "referring")


def _group_sections() -> list[tuple[str, str, list[Any]]]:
    """The groups as the pages offer them: by kind (統括, 事務局・関係課, 連携担当, つなぎ元), each in the
    order of config/organisation.yaml; a kind the file adds later comes last under its own name."""
    groups = engine_env().org.groups
    kinds = list(GROUP_KINDS) + sorted({gr.kind for gr in groups} - set(GROUP_KINDS))
    return [(kind, t(f"group_kind_{kind}") if has_message(f"group_kind_{kind}") else kind, members)
            for kind in kinds if (members := [gr for gr in groups if gr.kind == kind])]


def _field_errors(exc: Invalid | Conflict) -> dict[str, str]:
    return {key: pick(value) for key, value in (exc.fields or {"name": exc.message}).items()}


def _users_page(form: dict[str, Any] | None = None, errors: dict[str, str] | None = None, status: int = 200) -> Any:
    return render_template("ui/admin_users.html", users=users.list_users(db.session), sections=_group_sections(),
                           roles=[r.value for r in Role], form=form or {"roles": [Role.STAFF.value]},
                           errors=errors or {}, active="admin"), status


@bp.route("/admin/users")
@login_required
def users_page() -> Any:
    _require(Role.ADMIN)
    return _users_page()


@bp.route("/admin/users", methods=["POST"])
@login_required
def add_user() -> Any:
    _require(Role.ADMIN)
    form = {"name": request.form.get("name", ""), "display_name": request.form.get("display_name", ""),
            "groups": request.form.getlist("groups"), "roles": request.form.getlist("roles")}
    try:
        user = users.create_user(db.session, g.actor, form["name"], form["display_name"], form["groups"],
                                 form["roles"], request.form.get("password", ""), now())
    except (Invalid, Conflict) as exc:
        db.session.rollback()
        return _users_page(form, _field_errors(exc), exc.status)
    flash(t("user_added", name=user.name), "success")
    return redirect(url_for("ui_admin.users_page"))


def _user_page(target: Any, form: dict[str, Any], errors: dict[str, str] | None = None, status: int = 200) -> Any:
    return render_template("ui/admin_user.html", target=target, sections=_group_sections(),
                           roles=[r.value for r in Role], form=form, errors=errors or {}, active="admin"), status


@bp.route("/admin/users/<name>")
@login_required
def user_page(name: str) -> Any:
    _require(Role.ADMIN)
    target = users.get_user(db.session, name)
    return _user_page(target, {"roles": target.roles, "groups": target.group_ids, "active": target.active})


@bp.route("/admin/users/<name>", methods=["POST"])
@login_required
def change_user(name: str) -> Any:
    _require(Role.ADMIN)
    target = users.get_user(db.session, name)
    want_roles = set(request.form.getlist("roles"))
    want_groups = set(request.form.getlist("groups"))
    active = request.form.get("active") == "on"
    have_roles, have_groups = set(target.roles), set(target.group_ids)
    try:
        users.change_user(db.session, g.actor, name, now(),
                          add_roles=sorted(want_roles - have_roles), remove_roles=sorted(have_roles - want_roles),
                          add_groups=sorted(want_groups - have_groups),
                          remove_groups=sorted(have_groups - want_groups),
                          active=active)
    except Invalid as exc:
        db.session.rollback()
        # The engine names `group` and `role` (its own words are the message); the form's fields are plural.
        errors = {("groups" if key == "group" else "roles" if key == "role" else key): pick(exc.message)
                  for key in (exc.fields or {"groups": None})}
        return _user_page(users.get_user(db.session, name),
                          {"roles": sorted(want_roles), "groups": sorted(want_groups), "active": active}, errors, 422)
    flash(t("user_saved", name=name), "success")
    return redirect(url_for("ui_admin.users_page"))


# ---------------------------------------------------------------- audit trail


def _audit_filters() -> dict[str, Any]:
    args = request.args

    def day(key: str) -> datetime | None:
        text = (args.get(key) or "").strip()
        if not text:
            return None
        return datetime.combine(datetime.strptime(text, "%Y-%m-%d").date(), time(0), JST)

    try:
        since, until = day("since"), day("until")
        until = until + timedelta(days=1) if until else None
    except (ValueError, OverflowError):  # not a date, or 9999-12-31 (the day after does not exist)
        raise Invalid(t("invalid_dates"), {"since": "YYYY-MM-DD"}) from None
    return {"user": (args.get("user") or "").strip() or None, "case_number": (args.get("case") or "").strip() or None,
            "since": since, "until": until}


CASES_SHOWN = 10  # of a list's or queue's read: the rest is counted, and in the CSV in full


def _sep() -> str:
    return t("ad_sep")


def _person(name: Any, names: audit.Names) -> str:
    shown = names.users.get(name) if isinstance(name, str) else None
    return t("ad_person", shown=shown, name=name) if shown and shown != name else str(name)


def _group(group_id: Any) -> str:
    info = engine_env().org.group(group_id) if isinstance(group_id, str) else None
    return group_name(info) if info else str(group_id)


def _consent(value: Any) -> str:
    return t(f"consent_{value}") if value in writes.CONSENT_VALUES else t("consent_not_recorded")


def _listed(items: list[Any]) -> str:
    shown = _sep().join(str(i) for i in items[:CASES_SHOWN])
    return shown + (f" {t('ad_more', n=len(items) - CASES_SHOWN)}" if len(items) > CASES_SHOWN else "")


FILTER_LABELS = {"user": "audit_user", "case_number": "audit_case", "since": "audit_since", "until": "audit_until",
                 "action": "audit_action", "limit": "ad_limit", "offset": "ad_offset"}


def _filter_value(value: Any) -> str:
    try:
        return jst(datetime.fromisoformat(value)) if isinstance(value, str) and "T" in value else str(value)
    except ValueError:
        return str(value)


USER_FIELDS = {"groups": "groups", "roles": "roles", "active": "active"}


def _user_change(before: Any, after: Any) -> list[tuple[str, str]]:
    """What an account change changed: one line per field, 'before → after'."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []

    def shown(key: str, value: Any) -> str:
        if value is None:
            return t("ad_nothing")
        if key == "groups" and isinstance(value, list):
            return _sep().join(_group(v) for v in value) or t("ad_nothing")
        if key == "roles" and isinstance(value, list):
            return _sep().join(t(f"role_{v}") for v in value) or t("ad_nothing")
        if isinstance(value, bool):
            return t("yes") if value else t("no")
        return str(value)

    lines = [(t(label), f"{shown(key, before.get(key))} → {shown(key, after.get(key))}")
             for key, label in USER_FIELDS.items() if before.get(key) != after.get(key)]
    if after.get("password_changed"):
        lines.append((t("ad_password_changed"), t("ad_changed")))
    return lines


def audit_detail(r: Any, names: audit.Names) -> list[tuple[str, str]]:
    """A record's detail as (label, text) lines in the page's language: names, not ids or JSON.
    A key this page does not know is shown as it is, so nothing recorded is hidden."""
    d = dict(r.detail or {})
    lines: list[tuple[str, str]] = []
    if "via" in d:
        lines.append((t("ad_via"), action_label(str(d.pop("via")))))
    step = d.pop("step", None)
    task_id, timer_id = d.pop("task_id", None), d.pop("timer_id", None)
    if step is not None or task_id is not None:
        name = (names.steps.get(task_id) if isinstance(task_id, str) else None) or (
            names.timers.get(timer_id) if isinstance(timer_id, int) else None)
        lines.append((t("ad_step"), name or str(step)))
    if task_id is not None:
        lines.append((t("ad_task"), str(task_id)))
    if timer_id is not None:
        lines.append((t("ad_timer"), str(timer_id)))
    if "process" in d:
        key = d.pop("process")
        lines.append((t("ad_process"), names.processes.get(key, str(key))))
    for key in ("group", "assignee", "user"):
        if key in d:
            value = d.pop(key)
            lines.append((t(f"ad_{key}"), _group(value) if key == "group" else _person(value, names)))
    if "consent" in d:
        lines.append((t("ad_consent"), _consent(d.pop("consent"))))
    if "previous" in d:
        lines.append((t("ad_previous"), _consent(d.pop("previous"))))
    if "purpose" in d:
        lines.append((t("ad_purpose"), str(d.pop("purpose"))))
    if isinstance(d.get("cases"), list):
        lines.append((t("ad_cases"), _listed(d.pop("cases"))))
    if isinstance(d.get("filters"), dict):
        chosen = d.pop("filters")
        text = _sep().join(f"{t(FILTER_LABELS.get(k, k))} = {_filter_value(v)}" for k, v in chosen.items())
        lines.append((t("ad_filters"), text or t("ad_no_filters")))
    if "results" in d:
        lines.append((t("ad_results"), str(d.pop("results"))))
    if "before" in d or "after" in d:
        # A new user's record has no "before": each field shows as set from nothing.
        lines.extend(_user_change(d.pop("before", None) or {}, d.pop("after", None)))
    if "token_id" in d:
        lines.append((t("ad_token"), str(d.pop("token_id"))))
    if "label" in d:
        lines.append((t("ad_label"), str(d.pop("label")) or t("ad_nothing")))
    if "name" in d:
        lines.append((t("ad_name"), _person(d.pop("name"), names)))
    if "reason" in d:
        reason = str(d.pop("reason"))
        lines.append((t("ad_reason"), t(f"ad_reason_{reason}") if has_message(f"ad_reason_{reason}") else reason))
    if isinstance(d.get("deployed"), list):
        lines.append((t("ad_deployed"), _listed(d.pop("deployed")) or t("ad_nothing")))
    for key, value in d.items():  # recorded by a newer version, or by hand
        lines.append((key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)))
    return lines


@bp.route("/admin/audit")
@login_required
def audit_page() -> Any:
    _require(Role.ADMIN, Role.COORDINATION_LEAD)
    try:
        filters = _audit_filters()
    except Invalid as exc:
        flash(exc.message, "error")
        filters = None
    rows, names = audit.search_page(db.session, g.actor, now(), limit=AUDIT_PAGE, **filters) if filters else ([], None)
    return render_template("ui/admin_audit.html", rows=rows, args=request.args, max=AUDIT_PAGE, active="audit",
                           details={r.seq: audit_detail(r, names) for r in rows},
                           people={r.actor_name: names.users.get(r.actor_name) for r in rows} if names else {})


@bp.route("/admin/audit.csv")
@login_required
def audit_csv() -> Response:
    _require(Role.ADMIN, Role.COORDINATION_LEAD)
    try:
        filters = _audit_filters()
    except Invalid as exc:  # a download has no page to flash on: an error page saying what a date must be
        return Response(render_template("ui/error.html", status=422, title=t("error_title"), body=exc.message), 422)
    rows = audit.search_as(db.session, g.actor, now(), export=True, limit=10**6, **filters)
    stamp = now().astimezone(JST).strftime("%Y%m%d-%H%M")
    return Response(audit.to_csv(rows), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="tsunagu-audit-{stamp}.csv"'})


# ---------------------------------------------------------------- API tokens


@bp.route("/account/tokens")
@login_required
def tokens_page() -> Any:
    return render_template("ui/tokens.html", tokens=users.list_tokens(db.session, g.actor),
                           sessions=sessions.list_active(db.session, g.actor, now(), session_idle_timeout()),
                           current_session=page_session().row_id, active="tokens",
                           password_min=users.PASSWORD_MIN_LENGTH, password_max=users.PASSWORD_MAX_LENGTH)


@bp.route("/account/tokens/<id:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int) -> Response:
    users.revoke(db.session, g.actor, token_id, now())
    flash(t("token_revoked_flash"), "success")
    return redirect(url_for("ui_admin.tokens_page"))


# ---------------------------------------------------------------- sessions and password


@bp.route("/sessions/<id:session_id>/end", methods=["POST"])
@login_required
def end_session(session_id: int) -> Response:
    """End one of the caller's sessions (or, for an administrator, anyone's); ending the one in
    use is signing out."""
    if session_id == page_session().row_id:
        end_current_session(g.actor)
        flash(t("signed_out"), "info")
        return redirect(url_for("ui_auth.login"))
    sessions.end(db.session, g.actor, session_id, now())
    flash(t("session_ended_flash"), "success")
    return redirect(safe_next(request.form.get("next"), url_for("ui_admin.tokens_page")))


@bp.route("/admin/users/<name>/sessions")
@login_required
def user_sessions(name: str) -> Any:
    _require(Role.ADMIN)
    rows = sessions.list_active(db.session, g.actor, now(), session_idle_timeout(), name)
    return render_template("ui/admin_user_sessions.html", name=name, sessions=rows,
                           current_session=page_session().row_id,
                           active="admin")


@bp.route("/account/password", methods=["POST"])
@login_required
def change_password() -> Response:
    try:
        users.change_own_password(db.session, g.actor, request.form.get("current_password", ""),
                                  request.form.get("password", ""), now(), keep_session=page_session().row_id)
        flash(t("password_changed"), "success")
    except Invalid as exc:
        flash(exc.message, "error")
    return redirect(url_for("ui_admin.tokens_page"))
