"""Consent, sharing, API tokens, page sessions, users and the audit trail."""

from __future__ import annotations

from datetime import datetime

from flask import Response, g
from marshmallow import Schema, fields, validate

from engine.casework import cases
from engine.errors import Invalid
from engine.models import User
from engine.security import audit, sessions, users
from engine.workflow.limits import MAX_INT
from web.api import render
from web.api.auth import authenticate
from web.api.blueprint import Blueprint
from web.api.schemas import ApiError, CaseOut
from web.extensions import db, engine_env, now, session_idle_timeout

blp = Blueprint("admin", __name__, url_prefix="/api", description="Consent, sharing, tokens, users, audit trail")
blp.before_request(authenticate)


class ConsentIn(Schema):
    consent = fields.String(required=True, metadata={"description": "given, not_given or unknown (本人同意)"})


class ShareIn(Schema):
    group = fields.String(required=True)
    purpose = fields.String(required=True, metadata={"description": "e.g. 重層的支援会議での評価"})


class ShareOut(Schema):
    case_id = fields.String()
    group = fields.String()
    source = fields.String()
    since = fields.DateTime()


class TokenOut(Schema):
    id = fields.Integer()
    user = fields.String()
    label = fields.String()
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)


class TokenQuery(Schema):
    all = fields.Boolean(load_default=False, metadata={"description": "every user's tokens (administrators)"})


class SessionOut(Schema):
    id = fields.Integer()
    user = fields.String()
    device = fields.String(metadata={"description": "summary of the user agent, e.g. Chrome / Windows"})
    user_agent = fields.String()
    address = fields.String(allow_none=True)
    created_at = fields.DateTime()
    last_seen_at = fields.DateTime(metadata={"description": "exact to within a minute"})
    ended_at = fields.DateTime(allow_none=True)
    end_reason = fields.String(allow_none=True)


class SessionQuery(Schema):
    user = fields.String(metadata={"description": "another user's sessions (administrators)"})


class UserOut(Schema):
    name = fields.String()
    display_name = fields.String()
    groups = fields.List(fields.String())
    roles = fields.List(fields.String())
    active = fields.Boolean()
    password_change_required = fields.Boolean(metadata={
        "description": "the password was set by an administrator; the pages ask the user to change it first"})


class UserChangeIn(Schema):
    add_groups = fields.List(fields.String(), load_default=list)
    remove_groups = fields.List(fields.String(), load_default=list)
    add_roles = fields.List(fields.String(), load_default=list)
    remove_roles = fields.List(fields.String(), load_default=list)
    active = fields.Boolean(load_default=None, allow_none=True)
    password = fields.String(load_default=None, allow_none=True, load_only=True,
                             metadata={"description": "a new password (ends all the user's page sessions)"})


class UserCreateIn(Schema):
    # Types and presence are checked by the domain, which names every field at fault in one
    # refusal (the page's add form gets the same messages).
    name = fields.Raw(required=True, metadata={"description": "lower-case letters, digits, '.', '_', '-'"})
    display_name = fields.Raw(required=True, metadata={"description": "氏名"})
    groups = fields.Raw(required=True, metadata={"description": "group ids (at least one)"})
    roles = fields.Raw(required=True, metadata={"description": "staff, designer, supervisor, admin …"})
    password = fields.Raw(required=True, load_only=True,
                          metadata={"description": "the initial password (the password policy applies)"})


class AuditQuery(Schema):
    user = fields.String()
    case = fields.String(metadata={"description": "case number"})
    since = fields.AwareDateTime()
    until = fields.AwareDateTime()
    action = fields.String()
    limit = fields.Integer(load_default=1000, validate=validate.Range(1, 100000))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, MAX_INT))


class AuditOut(Schema):
    seq = fields.Integer()
    at = fields.DateTime()
    actor = fields.String(attribute="actor_name", allow_none=True)
    action = fields.String()
    case_number = fields.String(allow_none=True)
    origin = fields.String(allow_none=True)
    detail = fields.Dict(allow_none=True)
    hash = fields.String()


@blp.route("/cases/<case_id>/consent", methods=["POST"])
@blp.arguments(ConsentIn)
@blp.response(200, CaseOut)
@blp.alt_response(404, schema=ApiError)
def record_consent(body, case_id: str):  # noqa: ANN001, ANN201
    """Record the resident's consent (本人同意): value, when, and by whom."""
    env = engine_env()
    case = cases.record_consent(db.session, env, g.actor, case_id, body["consent"], now())
    return render.case(db.session, env, g.actor, case)


@blp.route("/cases/<case_id>/shares", methods=["POST"])
@blp.arguments(ShareIn)
@blp.response(201, ShareOut)
@blp.alt_response(409, schema=ApiError)
@blp.alt_response(403, schema=ApiError)
def share(body, case_id: str):  # noqa: ANN001, ANN201
    """Share a case beyond its support meeting; only where consent is given (409 otherwise)."""
    m = cases.share_case(db.session, engine_env(), g.actor, case_id, body["group"], body["purpose"], now())
    return {"case_id": m.case_id, "group": m.group_id, "source": m.source, "since": m.since}


@blp.route("/tokens")
@blp.arguments(TokenQuery, location="query")
@blp.response(200, TokenOut(many=True))
@blp.alt_response(403, schema=ApiError)
def list_tokens(query):  # noqa: ANN001, ANN201
    """The caller's API tokens (all users' with ?all=true, administrators only)."""
    return [_token_out(t) for t in users.list_tokens(db.session, g.actor, all_users=query["all"])]


@blp.route("/tokens/<id:token_id>", methods=["DELETE"])
@blp.response(200, TokenOut)
@blp.alt_response(404, schema=ApiError)
def revoke_token(token_id: int):  # noqa: ANN201
    """Revoke a token at once (the owner's own, or any for an administrator)."""
    return _token_out(users.revoke(db.session, g.actor, token_id, now()))


@blp.route("/sessions")
@blp.arguments(SessionQuery, location="query")
@blp.response(200, SessionOut(many=True))
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
def list_sessions(query):  # noqa: ANN001, ANN201
    """The caller's signed-in page sessions (another user's with ?user=, administrators only)."""
    user = query.get("user")
    rows = sessions.list_active(db.session, g.actor, now(), session_idle_timeout(), user)
    return [_session_out(r, user or g.actor.name) for r in rows]


@blp.route("/sessions/<id:session_id>", methods=["DELETE"])
@blp.response(200, SessionOut)
@blp.alt_response(404, schema=ApiError)
def end_session(session_id: int):  # noqa: ANN201
    """End a page session at once (the caller's own, or any for an administrator)."""
    row = sessions.end(db.session, g.actor, session_id, now())
    owner = db.session.get(User, row.user_id)
    return _session_out(row, owner.name if owner else "")


def _session_out(s, user: str) -> dict:  # noqa: ANN001
    return {"id": s.id, "user": user, "device": sessions.describe_device(s.user_agent), "user_agent": s.user_agent,
            "address": s.address, "created_at": s.created_at, "last_seen_at": s.last_seen_at,
            "ended_at": s.ended_at, "end_reason": s.end_reason}


def _token_out(t) -> dict:  # noqa: ANN001
    return {"id": t.id, "user": t.user.name, "label": t.label, "created_at": t.created_at,
            "last_used_at": t.last_used_at, "revoked_at": t.revoked_at}


def _user_out(u) -> dict:  # noqa: ANN001
    return {"name": u.name, "display_name": u.display_name, "groups": u.group_ids, "roles": u.roles, "active": u.active,
            "password_change_required": u.password_change_required}


@blp.route("/users")
@blp.response(200, UserOut(many=True))
@blp.alt_response(403, schema=ApiError)
def list_users():  # noqa: ANN201
    """Every user (administrators)."""
    users.require_admin(g.actor)
    return [_user_out(u) for u in users.list_users(db.session)]


@blp.route("/users", methods=["POST"])
@blp.arguments(UserCreateIn)
@blp.response(201, UserOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(409, schema=ApiError)
@blp.alt_response(422, schema=ApiError)
def create_user(body):  # noqa: ANN001, ANN201
    """Add a user with an initial password (administrators); audited as user.create."""
    return _user_out(users.create_user(db.session, g.actor, body["name"], body["display_name"], body["groups"],
                                       body["roles"], body["password"], now()))


@blp.route("/users/<name>", methods=["PATCH"])
@blp.arguments(UserChangeIn)
@blp.response(200, UserOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(422, schema=ApiError)
def change_user(body, name: str):  # noqa: ANN001, ANN201
    """Change a user's groups, roles, status or password (administrators). A new password or
    disabling the user ends the user's page sessions at once."""
    return _user_out(users.change_user(db.session, g.actor, name, now(), **body))


def _audit_filters(query: dict) -> dict:
    since, until = query.get("since"), query.get("until")
    if since and until and since >= until:
        raise Invalid("since must be before until", {"since": "must be before until"})
    return {"user": query.get("user"), "case_number": query.get("case"), "since": since, "until": until,
            "action": query.get("action"), "limit": query["limit"], "offset": query["offset"]}


@blp.route("/audit")
@blp.arguments(AuditQuery, location="query")
@blp.response(200, AuditOut(many=True))
@blp.alt_response(403, schema=ApiError)
def search_audit(query):  # noqa: ANN001, ANN201
    """Search the audit trail by user, case number and period (administrators, coordination lead)."""
    return audit.search_as(db.session, g.actor, now(), **_audit_filters(query))


@blp.route("/audit.csv")
@blp.arguments(AuditQuery, location="query")
@blp.response(200, {"type": "string", "description": "CSV, UTF-8 with BOM"}, content_type="text/csv")
@blp.alt_response(403, schema=ApiError)
def export_audit(query):  # noqa: ANN001, ANN201
    """The same search as CSV (UTF-8 with BOM, so spreadsheet software reads Japanese)."""
    rows = audit.search_as(db.session, g.actor, now(), export=True, **_audit_filters(query))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Response(audit.to_csv(rows), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="tsunagu-audit-{stamp}.csv"'})
