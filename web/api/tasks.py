"""Tasks: the caller's queue, one task with its form, claim, release, assign, draft, complete."""

from __future__ import annotations

from flask import current_app, g

from engine.casework import cases
from engine.workflow import forms
from web.api import render
from web.api.auth import authenticate
from web.api.blueprint import Blueprint
from web.api.schemas import (
    ApiError,
    AssignIn,
    CompleteIn,
    CompleteOut,
    DraftIn,
    TaskDetailOut,
    TaskOut,
    TaskQuery,
)
from web.extensions import db, engine_env, now

blp = Blueprint("tasks", __name__, url_prefix="/api/tasks", description="Human tasks (作業)")
blp.before_request(authenticate)


@blp.route("")
@blp.arguments(TaskQuery, location="query")
@blp.response(200, TaskOut(many=True))
def queue(query):  # noqa: ANN001, ANN201
    """Open tasks of the caller's groups and those assigned to the caller, by due date."""
    body = cases.task_queue_json(db.session, g.actor, process=query.get("process"), step=query.get("step"),
                                 group=query.get("group"), limit=query["limit"], offset=query["offset"])
    # Already TaskOut's JSON: answered as is (flask-smorest passes a Response through undumped).
    return current_app.response_class(body, mimetype="application/json")


@blp.route("/<task_id>")
@blp.response(200, TaskDetailOut)
@blp.alt_response(404, schema=ApiError)
def get_task(task_id: str):  # noqa: ANN201
    """One task with its form's JSON Schema and prefill data."""
    env = engine_env()
    row, schema, data = cases.get_task(db.session, env, g.actor, task_id, now())
    info = cases.step_info(env, row)
    served = forms.standard(schema, env.org.groups, row.name, info.documentation if info else None)
    return {**render.task(db.session, row), "schema": served, "data": data}


@blp.route("/<task_id>/claim", methods=["POST"])
@blp.response(200, TaskOut)
@blp.alt_response(409, schema=ApiError)
@blp.alt_response(403, schema=ApiError)
def claim(task_id: str):  # noqa: ANN201
    """Take the task: it leaves the group's shared queue for the caller."""
    return render.task(db.session, cases.claim_task(db.session, engine_env(), g.actor, task_id, now()))


@blp.route("/<task_id>/release", methods=["POST"])
@blp.response(200, TaskOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(409, schema=ApiError)
def release(task_id: str):  # noqa: ANN201
    """Give the task back to the group's queue."""
    return render.task(db.session, cases.release_task(db.session, engine_env(), g.actor, task_id, now()))


@blp.route("/<task_id>/assign", methods=["POST"])
@blp.arguments(AssignIn)
@blp.response(200, TaskOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(409, schema=ApiError)
def assign(body, task_id: str):  # noqa: ANN001, ANN201
    """(Supervisor) assign the task to a named member of its group."""
    row = cases.assign_task(db.session, engine_env(), g.actor, task_id, body["assignee"], now())
    return render.task(db.session, row)


@blp.route("/<task_id>/draft", methods=["PUT"])
@blp.arguments(DraftIn)
@blp.response(200, TaskOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(409, schema=ApiError)
def draft(body, task_id: str):  # noqa: ANN001, ANN201
    """Save what was typed so far; checked only on completion."""
    return render.task(db.session, cases.save_draft(db.session, engine_env(), g.actor, task_id, body["data"], now()))


@blp.route("/<task_id>/complete", methods=["POST"])
@blp.arguments(CompleteIn)
@blp.response(200, CompleteOut)
@blp.alt_response(409, schema=ApiError)
@blp.alt_response(422, schema=ApiError)
@blp.alt_response(403, schema=ApiError)
def complete(body, task_id: str):  # noqa: ANN001, ANN201
    """Submit the form; the case moves on. 422 names the failing fields; 409 if someone else was first."""
    env = engine_env()
    case, row = cases.complete(db.session, env, g.actor, task_id, body["data"], now())
    return {**render.task(db.session, row), "case": render.case(db.session, env, g.actor, case)}
