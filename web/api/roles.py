"""GET /api/roles: the roles the caller's groups hold in cases (担当している役割)."""

from __future__ import annotations

from flask import g

from engine.casework import role_holders
from web.api.auth import authenticate
from web.api.blueprint import Blueprint
from web.api.schemas import RoleOut
from web.extensions import db, engine_env, now

blp = Blueprint("roles", __name__, url_prefix="/api", description="Roles held in cases (担当している役割)")
blp.before_request(authenticate)


@blp.route("/roles")
@blp.response(200, RoleOut(many=True))
def list_roles():  # noqa: ANN201
    """The cases where one of the caller's groups holds a role given at the support meeting, with
    the role, where the case is now, and the group's report awaited at this monitoring round."""
    rows = role_holders.held_roles(db.session, engine_env(), g.actor, now())
    return [{"case_id": r.case_id, "case_number": r.case_number, "process": r.process_key, "status": r.status,
             "summary": r.summary, "group": r.group_id, "role": r.role, "since": r.since,
             "current_steps": r.current_steps,
             "report_task": {"id": r.report_task_id, "due_at": r.report_due_at.isoformat() if r.report_due_at else None}
             if r.report_task_id else None} for r in rows]
