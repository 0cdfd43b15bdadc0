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

from engine import audit, cases, sessions, users, writes
from engine.errors import Conflict, Forbidden, Invalid
from engine.status import Role
from web.extensions import db, engine_env, now, session_idle_timeout
from web.ui import csrf, errors
from web.ui.auth import end_current_session, load_actor, login_required, page_session, safe_next
from web.ui.errors import error_message
from web.ui.i18n import JST, MESSAGES, action_label, group_name, jst, pick, t

bp = Blueprint("ui_admin", __name__)
bp.before_request(load_actor)
bp.before_request(csrf.protect)
errors.install(bp)

MESSAGES.update({
    "nav_admin_users": ("ユーザー管理", "Users"),
    "nav_audit": ("アクセス記録", "Audit trail"),
    "nav_tokens": ("アカウント", "Account"),
    "consent_title": ("本人同意", "Consent"),
    "consent_recorded": ("{when}、{who} が記録", "Recorded {when} by {who}"),
    "consent_not_recorded": ("未記録", "Not recorded"),
    "consent_update": ("本人同意を記録", "Record consent"),
    "consent_saved": ("本人同意を記録しました。", "Consent recorded."),
    "share_title": ("支援会議の構成員以外との共有", "Share beyond the support meeting"),
    "share_lead": ("重層的支援会議での評価などのため、本人同意がある場合に限り他の機関と共有できます。",
                   "For a wider review (e.g. the 重層的支援会議), a case may be shared only with the resident's consent."),
    "share_needs_consent": ("本人同意が「同意あり」でないため共有できません。",
                            "Sharing needs the resident's consent, which has not been given."),
    "share_group": ("共有先の機関", "Share with"),
    "share_purpose": ("目的", "Purpose"),
    "share_submit": ("共有する", "Share"),
    "shared": ("{group} と共有しました。", "Shared with {group}."),
    "users_title": ("ユーザー管理", "Users"),
    "users_lead": ("役割と所属グループを管理します。変更はアクセス記録に残ります。",
                   "Manage roles and group membership. Every change is recorded in the audit trail."),
    "user_name": ("ユーザー名", "User name"),
    "display_name": ("氏名", "Name"),
    "groups": ("所属グループ", "Groups"),
    "roles": ("役割", "Roles"),
    "active": ("有効", "Active"),
    "save": ("保存", "Save"),
    "user_saved": ("{name} を更新しました。", "{name} updated."),
    "users_list_title": ("登録済みのユーザー", "Registered users"),
    "users_add_title": ("ユーザーを追加", "Add a user"),
    "users_add_lead": ("初期パスワードは本人に直接伝え、最初のログイン後に「アカウント」のページで変更してもらってください。",
                       "Give the initial password to the person directly; they change it on their account page "
                       "after signing in."),
    "user_name_help": ("ログインに使う名前です。半角の英小文字・数字・「.」「_」「-」（例: hokatsu.sato）。",
                       "The name used to sign in: lower-case letters, digits, '.', '_' or '-' (e.g. hokatsu.sato)."),
    "display_name_help": ("画面や記録に表示される氏名です。", "The name shown on pages and in records."),
    "user_password": ("初期パスワード", "Initial password"),
    "user_password_help": ("10 文字以上。ユーザー名と同じもの、よく使われるものは使えません。",
                           "At least 10 characters; not the user name or a commonly used password."),
    "roles_help": ("通常の職員は「職員」です。", "Most people are Staff."),
    "groups_help": ("所属する機関・課をすべて選んでください（一つ以上）。", "Tick every agency or division the person "
                    "belongs to (at least one)."),
    "users_add_submit": ("ユーザーを追加する", "Add the user"),
    "user_added": ("{name} を追加しました。", "{name} added."),
    "user_edit": ("編集", "Edit"),
    "user_edit_label": ("{name} を編集", "Edit {name}"),
    "user_edit_title": ("{name} の役割と所属", "Roles and groups of {name}"),
    "user_active_help": ("チェックを外すと、この職員はログインできなくなり、ログイン中のセッションも終了します。",
                         "Untick to stop this person signing in; their signed-in sessions end."),
    "user_inactive": ("無効", "Disabled"),
    "back_to_users": ("ユーザー一覧へ戻る", "Back to the users"),
    "group_kind_lead": ("統括", "Lead"),
    "group_kind_secretariat": ("事務局・関係課", "Secretariat and divisions"),
    "group_kind_liaison": ("連携担当の課", "Liaison divisions"),
    "group_kind_referring": ("つなぎ元の機関", "Referring agencies"),
    "role_staff": ("職員", "Staff"),
    "role_secretariat": ("事務局", "Secretariat"),
    "role_coordination_lead": ("統括者", "Coordination lead"),
    "role_supervisor": ("スーパーバイザー", "Supervisor"),
    "role_designer": ("プロセス設計者", "Process designer"),
    "role_admin": ("管理者", "Administrator"),
    "audit_title": ("アクセス記録", "Audit trail"),
    "audit_lead": ("個人情報の閲覧と変更の記録です（改ざん検知付き）。", "Every read of case data and every change, hash-chained."),
    "audit_user": ("職員（ユーザー名）", "User name"),
    "audit_case": ("案件番号", "Case number"),
    "audit_since": ("開始日", "From"),
    "audit_until": ("終了日", "To (inclusive)"),
    "audit_search": ("検索", "Search"),
    "audit_export": ("CSV で出力", "Export CSV"),
    "audit_at": ("日時", "When"),
    "audit_actor": ("職員", "Who"),
    "audit_action": ("操作", "Action"),
    "audit_origin": ("接続元", "From where"),
    "audit_detail": ("詳細", "Detail"),
    "audit_results": ("{n} 件（新しい順、最大 {max} 件）", "{n} records (newest first, at most {max})"),
    "audit_none": ("該当する記録はありません。", "No records match."),
    "tokens_title": ("APIトークン", "API tokens"),
    "tokens_lead": ("あなたの API トークンです。不要なものは直ちに無効にしてください。",
                    "Your API tokens. Revoke any you no longer use; revocation takes effect at once."),
    "token_label": ("名前", "Label"),
    "token_created": ("発行日時", "Issued"),
    "token_state": ("状態", "State"),
    "token_active": ("有効", "Active"),
    "token_revoked": ("無効（{when}）", "Revoked ({when})"),
    "token_revoke": ("無効にする", "Revoke"),
    "token_revoked_flash": ("トークンを無効にしました。", "Token revoked."),
    "tokens_none": ("トークンはありません。", "You have no tokens."),
    "invalid_dates": ("日付は YYYY-MM-DD で入力してください。", "Dates must be YYYY-MM-DD."),
    # the audit page's details, one line per item
    "ad_via": ("試みた操作", "Attempted"),
    "ad_task": ("作業ID", "Task ID"),
    "ad_step": ("工程", "Step"),
    "ad_timer": ("予定ID", "Schedule ID"),
    "ad_process": ("プロセス", "Process"),
    "ad_group": ("機関", "Agency"),
    "ad_assignee": ("担当者", "Assignee"),
    "ad_consent": ("本人同意", "Consent"),
    "ad_previous": ("変更前", "Previously"),
    "ad_purpose": ("目的", "Purpose"),
    "ad_cases": ("案件", "Cases"),
    "ad_more": ("ほか {n} 件", "and {n} more"),
    "ad_filters": ("検索条件", "Filters"),
    "ad_no_filters": ("条件なし", "none"),
    "ad_results": ("件数", "Results"),
    "ad_limit": ("最大件数", "At most"),
    "ad_offset": ("開始位置", "Skipping"),
    "ad_user": ("対象ユーザー", "User"),
    "ad_password_changed": ("パスワード", "Password"),
    "ad_changed": ("変更", "changed"),
    "ad_token": ("トークンID", "Token ID"),
    "ad_label": ("トークン名", "Token label"),
    "ad_name": ("入力されたユーザー名", "User name entered"),
    "ad_reason": ("理由", "Reason"),
    "ad_reason_rate_limited": ("失敗が続いたため制限中", "blocked after repeated failures"),
    "ad_deployed": ("登録した定義", "Deployed"),
    "ad_nothing": ("なし", "none"),
    "ad_sep": ("、", ", "),
    "ad_person": ("{shown}（{name}）", "{shown} ({name})"),
    "account_title": ("アカウント", "Account"),
    "sessions_title": ("ログイン中のセッション", "Signed-in sessions"),
    "sessions_lead": ("心当たりのないものは直ちに終了し、パスワードを変更してください。",
                      "End any you do not recognise at once, and change your password."),
    "user_sessions_title": ("{name} のログイン中のセッション", "Signed-in sessions of {name}"),
    "session_device": ("端末", "Device"),
    "session_address": ("接続元", "Address"),
    "session_created": ("ログイン日時", "Signed in"),
    "session_last_seen": ("最終操作", "Last seen"),
    "session_this": ("この端末", "This session"),
    "session_end": ("終了する", "End"),
    "session_ended_flash": ("セッションを終了しました。", "Session ended."),
    "sessions_none": ("ログイン中のセッションはありません。", "No signed-in sessions."),
    "user_sessions_link": ("セッション", "Sessions"),
    "password_title": ("パスワードの変更", "Change password"),
    "password_lead": ("{n} 文字以上。変更すると、この端末以外のセッションはすべて終了します。",
                      "At least {n} characters. Changing it ends every other session of yours."),
    "current_password": ("現在のパスワード", "Current password"),
    "new_password": ("新しいパスワード", "New password"),
    "password_change": ("変更する", "Change"),
    "password_changed": ("パスワードを変更しました。", "Password changed."),
})

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
    return [(kind, t(f"group_kind_{kind}") if f"group_kind_{kind}" in MESSAGES else kind, members)
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
        lines.append((t("ad_reason"), t(f"ad_reason_{reason}") if f"ad_reason_{reason}" in MESSAGES else reason))
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
