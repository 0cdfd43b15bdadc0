"""GET /api/groups, GET /api/me."""

from __future__ import annotations

from flask import g

from engine.security import users
from web.api.auth import authenticate
from web.api.blueprint import Blueprint
from web.api.schemas import GroupOut, MeOut
from web.extensions import db

blp = Blueprint("groups", __name__, url_prefix="/api", description="Organisations and the caller")
blp.before_request(authenticate)


@blp.route("/groups")
@blp.response(200, GroupOut(many=True))
def list_groups():  # noqa: ANN201
    """The organisations of the scheme (groups)."""
    return users.list_groups(db.session)


@blp.route("/me")
@blp.response(200, MeOut)
def me():  # noqa: ANN201
    """Who the token belongs to."""
    u = g.actor
    return {"name": u.name, "display_name": u.display_name, "groups": u.group_ids, "roles": u.roles}
