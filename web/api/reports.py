"""Supervisors' reports: the stuck-case report (JSON and CSV), the heatmap of a process's
steps, and the workload per group and per worker. Supervisors, the coordination lead and
administrators; anyone else gets 403."""

from __future__ import annotations

from flask import Response, g
from marshmallow import Schema, fields, validate

from engine.reports import JST, heatmap, stuck, workload
from engine.workflow.limits import MAX_INT
from web.api.auth import authenticate
from web.api.blueprint import Blueprint
from web.api.schemas import ApiError
from web.extensions import db, engine_env, now

blp = Blueprint("reports", __name__, url_prefix="/api/reports", description="Supervisors' reports (集計)")
blp.before_request(authenticate)


class StuckQuery(Schema):
    process = fields.String(metadata={"description": "process key, e.g. multi_agency"})
    step = fields.String(metadata={"description": "BPMN element id of the step"})
    group = fields.String(metadata={"description": "group id: the task's group, or the case's referring group"})
    reason = fields.String(validate=validate.OneOf(stuck.REASONS), metadata={"description": ", ".join(stuck.REASONS)})
    min_age_days = fields.Integer(validate=validate.Range(0, 100_000))
    age = fields.String(validate=validate.OneOf(list(stuck.AGE_BUCKETS)),
                        metadata={"description": "age bucket in days: lt7 (<7), 7-30, 30-90, gt90 (>=90)"})
    sort = fields.String(load_default="-age", validate=validate.OneOf(stuck.SORTS),
                         metadata={"description": "-age: oldest first (default); age: newest first"})


class StuckPageQuery(StuckQuery):
    limit = fields.Integer(load_default=stuck.DEFAULT_LIMIT, validate=validate.Range(1, stuck.MAX_LIMIT))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, MAX_INT))


class StuckRowOut(Schema):
    case_id = fields.String()
    case_number = fields.String()
    process = fields.String()
    version = fields.Integer(allow_none=True, metadata={"description": "the case's process definition version"})
    step = fields.String(allow_none=True)
    step_name = fields.String(allow_none=True)
    group = fields.String(allow_none=True)
    assignee = fields.String(allow_none=True, metadata={"description": "user name"})
    reason = fields.String(metadata={"description": ", ".join(stuck.REASONS)})
    since = fields.DateTime(metadata={"description": "when the reason began (due time, opened, last history...)"})
    age_days = fields.Integer(metadata={"description": "whole days since `since`"})
    detail = fields.String(allow_none=True, metadata={"description": "the error text (error), the message (waiting)"})


class StuckOut(Schema):
    items = fields.List(fields.Nested(StuckRowOut))
    total = fields.Integer()


class HeatmapQuery(Schema):
    process = fields.String(required=True)
    version = fields.Integer(validate=validate.Range(1, 1_000_000),
                             metadata={"description": "one version; omitted: all versions by element id"})
    # `from` is a Python keyword: the field is read from the query's "from".
    from_ = fields.String(data_key="from", metadata={"description": "YYYY-MM-DD (Japan) or ISO date-time; default "
                                                                    "30 days before `to`"})
    to = fields.String(metadata={"description": "YYYY-MM-DD (inclusive) or ISO date-time; default now"})


class StepLoadOut(Schema):
    step = fields.String()
    name = fields.String()
    open = fields.Integer()
    stuck = fields.Integer()
    median_hours = fields.Float(allow_none=True)
    p90_hours = fields.Float(allow_none=True)
    entered = fields.Integer()


class HeatmapOut(Schema):
    process = fields.String()
    version = fields.Integer(allow_none=True)
    versions = fields.List(fields.Integer())
    start = fields.DateTime(data_key="from")
    end = fields.DateTime(data_key="to")
    steps = fields.List(fields.Nested(StepLoadOut))


class LoadOut(Schema):
    open = fields.Integer()
    overdue = fields.Integer()
    claimed = fields.Integer()
    completed_this_month = fields.Integer()


class GroupLoadOut(LoadOut):
    group = fields.String(attribute="key")
    name = fields.String()


class UserLoadOut(LoadOut):
    user = fields.String(attribute="key")
    name = fields.String()


class WorkloadOut(Schema):
    groups = fields.List(fields.Nested(GroupLoadOut))
    users = fields.List(fields.Nested(UserLoadOut))


def _filters(query: dict) -> stuck.Filters:
    return stuck.check_filters(query.get("process"), query.get("step"), query.get("group"), query.get("reason"),
                               query.get("min_age_days"), query.get("age"))


@blp.route("/stuck")
@blp.arguments(StuckPageQuery, location="query")
@blp.response(200, StuckOut)
@blp.alt_response(403, schema=ApiError)
def stuck_report(query):  # noqa: ANN001, ANN201
    """Stuck cases, once per reason, oldest first; only cases the caller may see."""
    page = stuck.stuck_page(db.session, engine_env(), g.actor, now(), _filters(query), sort=query["sort"],
                            limit=query["limit"], offset=query["offset"])
    return {"items": page.items, "total": page.total}


@blp.route("/stuck.csv")
@blp.arguments(StuckQuery, location="query")
@blp.response(200, {"type": "string", "description": "CSV, UTF-8 with BOM, Japanese headers"}, content_type="text/csv")
@blp.alt_response(403, schema=ApiError)
def stuck_csv(query):  # noqa: ANN001, ANN201
    """The same report, every row, as CSV that opens in Excel as is."""
    env = engine_env()
    rows = stuck.stuck_export(db.session, env, g.actor, now(), _filters(query), sort=query["sort"])
    stamp = now().astimezone(JST).strftime("%Y%m%d-%H%M")
    return Response(stuck.to_csv(rows, {gr.id: gr.name for gr in env.org.groups}), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="tsunagu-stuck-{stamp}.csv"'})


@blp.route("/heatmap")
@blp.arguments(HeatmapQuery, location="query")
@blp.response(200, HeatmapOut)
@blp.alt_response(403, schema=ApiError)
def heatmap_report(query):  # noqa: ANN001, ANN201
    """Per user task of a process: open, stuck, and over the period entered, median and p90 hours."""
    return heatmap.heatmap(db.session, engine_env(), g.actor, now(), query["process"], query.get("version"),
                           query.get("from_"), query.get("to"))


@blp.route("/workload")
@blp.response(200, WorkloadOut)
@blp.alt_response(403, schema=ApiError)
def workload_report():  # noqa: ANN201
    """Open, overdue, claimed and completed this month, per group and per worker."""
    return workload.workload(db.session, engine_env(), g.actor, now())
