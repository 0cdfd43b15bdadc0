"""A supervisor's API: escalations (要対応) and their acknowledgement, retry of a case in error,
moving a case's token, and bulk reassignment. The rules are the domain's (engine.casework.escalation,
engine.casework.repair); this module parses and renders."""

from __future__ import annotations

from typing import Any

from flask import g
from marshmallow import Schema, fields, validate

from engine.casework import escalation, repair
from engine.workflow.limits import MAX_INT
from web.api import render
from web.api.auth import authenticate
from web.api.blueprint import Blueprint
from web.api.schemas import DATA_DEPTH, ApiError, CaseOut
from web.extensions import db, engine_env, now

blp = Blueprint("supervise", __name__, url_prefix="/api", description="Supervision: escalations and repairs (要対応・修復)")
blp.before_request(authenticate)


class EscalationOut(Schema):
    id = fields.Integer(required=True)
    level = fields.Integer(required=True, metadata={"description": "1: past the task's limit; 2: past the second "
                                                                   "threshold (default twice the limit)"})
    audience = fields.String(required=True, metadata={
        "description": "supervisor (the task group's supervisors) or coordination_lead (level 2, or level 1 when the "
                       "group has no supervisor)"})
    task_id = fields.String(required=True)
    case_id = fields.String(required=True)
    case_number = fields.String(required=True)
    process = fields.String()
    step = fields.String()
    step_name = fields.String()
    group = fields.String(allow_none=True)
    assignee = fields.String(allow_none=True, metadata={"description": "user name"})
    due_at = fields.DateTime(required=True)
    escalated_at = fields.DateTime(required=True)
    acknowledged_at = fields.DateTime(allow_none=True)
    acknowledged_by = fields.String(allow_none=True)
    note = fields.String(allow_none=True)


class EscalationListOut(Schema):
    items = fields.List(fields.Nested(EscalationOut), required=True)
    total = fields.Integer(required=True)


class EscalationQuery(Schema):
    all = fields.Boolean(load_default=False, metadata={
        "description": "also acknowledged items and those of tasks no longer open (newest first)"})
    limit = fields.Integer(load_default=200, validate=validate.Range(1, 1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, MAX_INT))


class AcknowledgeIn(Schema):
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=escalation.MAX_NOTE),
                         metadata={"description": "what was done about it"})


class RetryIn(Schema):
    data = fields.Dict(load_default=None, allow_none=True, metadata={
        "description": "corrected values, merged into the failed task's data (and into the kept submission for "
                       f"fields of its form); {DATA_DEPTH}"})
    task_id = fields.String(load_default=None, allow_none=True, metadata={
        "description": "the open task whose completion failed, when the case has several"})


class MoveIn(Schema):
    to_step = fields.String(required=True, metadata={"description": "BPMN id of a user task of the case's process"})
    reason = fields.String(required=True, validate=validate.Length(max=repair.MAX_REASON))


class BulkAssignIn(Schema):
    tasks = fields.List(fields.String(), required=True, metadata={"description": f"1 to {repair.MAX_BULK} task ids"})
    assignee = fields.String(required=True, metadata={"description": "user name of a member of each task's group"})


class BulkError(Schema):
    code = fields.String()
    message = fields.String()


class BulkResult(Schema):
    task_id = fields.String(required=True)
    ok = fields.Boolean(required=True)
    case_id = fields.String()
    case_number = fields.String()
    step = fields.String()
    error = fields.Nested(BulkError, metadata={"description": "why this task was not assigned (not_found for a task "
                                                              "the caller may not see)"})


class BulkAssignOut(Schema):
    results = fields.List(fields.Nested(BulkResult), required=True)


def _item(item: escalation.Item) -> dict[str, Any]:
    return {"id": item.id, "level": item.level, "audience": item.audience, "task_id": item.task_id,
            "case_id": item.case_id, "case_number": item.case_number, "process": item.process, "step": item.step,
            "step_name": item.step_name, "group": item.group, "assignee": item.assignee, "due_at": item.due_at,
            "escalated_at": item.escalated_at, "acknowledged_at": item.acknowledged_at,
            "acknowledged_by": item.acknowledged_by, "note": item.note}


@blp.route("/escalations")
@blp.arguments(EscalationQuery, location="query")
@blp.response(200, EscalationListOut)
@blp.alt_response(403, schema=ApiError)
def list_escalations(query):  # noqa: ANN001, ANN201
    """(Supervisor, coordination lead) the caller's 要対応 items: open tasks past a time limit, oldest first."""
    items, total = escalation.list_escalations(db.session, g.actor, include_acknowledged=query["all"],
                                               limit=query["limit"], offset=query["offset"])
    return {"items": [_item(i) for i in items], "total": total}


@blp.route("/escalations/<id:escalation_id>/acknowledge", methods=["POST"])
@blp.arguments(AcknowledgeIn)
@blp.response(200, EscalationOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
def acknowledge(body, escalation_id: int):  # noqa: ANN001, ANN201
    """Mark the item handled (対応済み); recorded on the case and in the audit trail. Again: no change."""
    return _item(escalation.acknowledge(db.session, engine_env(), g.actor, escalation_id, body["note"], now()))


@blp.route("/cases/<case_id>/retry", methods=["POST"])
@blp.arguments(RetryIn)
@blp.response(200, CaseOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
@blp.alt_response(409, schema=ApiError)
@blp.alt_response(422, schema=ApiError)
def retry(body, case_id: str):  # noqa: ANN001, ANN201
    """(Supervisor) re-run the failed step of a case in error. Still failing: 422 with the element; the case
    stays in error. Not in error: 409."""
    env = engine_env()
    case = repair.retry_case(db.session, env, g.actor, case_id, body["data"], now(), task_id=body["task_id"])
    return render.case(db.session, env, g.actor, case)


@blp.route("/cases/<case_id>/move", methods=["POST"])
@blp.arguments(MoveIn)
@blp.response(200, CaseOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
@blp.alt_response(409, schema=ApiError)
@blp.alt_response(422, schema=ApiError)
def move(body, case_id: str):  # noqa: ANN001, ANN201
    """(Supervisor) move the case's token to another user task of its process, with a reason."""
    env = engine_env()
    case = repair.move_case(db.session, env, g.actor, case_id, body["to_step"], body["reason"], now())
    return render.case(db.session, env, g.actor, case)


@blp.route("/tasks/assign", methods=["POST"])
@blp.arguments(BulkAssignIn)
@blp.response(200, BulkAssignOut)
@blp.alt_response(403, schema=ApiError)
def assign_many(body):  # noqa: ANN001, ANN201
    """(Supervisor) assign many tasks to one member of their groups: a result per task, each assigned or
    refused on its own."""
    return {"results": repair.assign_tasks(db.session, engine_env(), g.actor, body["tasks"], body["assignee"], now())}
