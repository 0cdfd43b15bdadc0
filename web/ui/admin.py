"""Pages for confidentiality and accounts (issue 3): consent and consented sharing on a case,
user administration, the audit trail search with CSV export, and the caller's API tokens.

Like every page, each view parses the form, calls one domain function, and renders.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for

from engine import audit, cases, users
from engine.errors import Conflict, Forbidden, Invalid
from engine.status import Role
from web.extensions import db, engine_env, now
from web.ui import csrf, errors
from web.ui.auth import load_actor, login_required
from web.ui.errors import error_message
from web.ui.i18n import JST, MESSAGES, t

bp = Blueprint("ui_admin", __name__)
bp.before_request(load_actor)
bp.before_request(csrf.protect)
errors.install(bp)

MESSAGES.update({
    "nav_admin_users": ("ユーザー管理", "Users"),
    "nav_audit": ("アクセス記録", "Audit trail"),
    "nav_tokens": ("APIトークン", "API tokens"),
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


@bp.route("/admin/users")
@login_required
def users_page() -> Any:
    _require(Role.ADMIN)
    return render_template("ui/admin_users.html", users=users.list_users(db.session),
                           groups=users.list_groups(db.session), roles=[r.value for r in Role], active="admin")


@bp.route("/admin/users/<name>", methods=["POST"])
@login_required
def change_user(name: str) -> Response:
    _require(Role.ADMIN)
    target = users.get_user(db.session, name)
    want_roles = set(request.form.getlist("roles"))
    want_groups = set(request.form.getlist("groups"))
    have_roles, have_groups = set(target.roles), set(target.group_ids)
    try:
        users.change_user(db.session, g.actor, name, now(),
                          add_roles=sorted(want_roles - have_roles), remove_roles=sorted(have_roles - want_roles),
                          add_groups=sorted(want_groups - have_groups),
                          remove_groups=sorted(have_groups - want_groups),
                          active=request.form.get("active") == "on")
        flash(t("user_saved", name=name), "success")
    except Invalid as exc:
        flash(f"{name}: {exc.message}", "error")
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


@bp.route("/admin/audit")
@login_required
def audit_page() -> Any:
    _require(Role.ADMIN, Role.COORDINATION_LEAD)
    try:
        filters = _audit_filters()
    except Invalid as exc:
        flash(exc.message, "error")
        filters = None
    rows = audit.search_as(db.session, g.actor, now(), limit=AUDIT_PAGE, **filters) if filters else []
    return render_template("ui/admin_audit.html", rows=rows, args=request.args, max=AUDIT_PAGE, active="audit")


@bp.route("/admin/audit.csv")
@login_required
def audit_csv() -> Response:
    _require(Role.ADMIN, Role.COORDINATION_LEAD)
    try:
        filters = _audit_filters()
    except Invalid:
        abort(400)
    rows = audit.search_as(db.session, g.actor, now(), export=True, limit=10**6, **filters)
    stamp = now().astimezone(JST).strftime("%Y%m%d-%H%M")
    return Response("\ufeff" + audit.to_csv(rows), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="tsunagu-audit-{stamp}.csv"'})


# ---------------------------------------------------------------- API tokens


@bp.route("/account/tokens")
@login_required
def tokens_page() -> Any:
    return render_template("ui/tokens.html", tokens=users.list_tokens(db.session, g.actor), active="tokens")


@bp.route("/account/tokens/<id:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int) -> Response:
    users.revoke(db.session, g.actor, token_id, now())
    flash(t("token_revoked_flash"), "success")
    return redirect(url_for("ui_admin.tokens_page"))
