"""Consultations at any window, consultation days (総合相談会), the participation places
register and the city's statistics."""

from __future__ import annotations

from typing import Any

from flask import Response, g
from marshmallow import Schema, fields, validate

from engine.casework import consultations, places
from engine.models import Consultation, ConsultationEvent
from engine.reports import statistics
from engine.workflow.limits import MAX_INT
from web.api.auth import authenticate
from web.api.blueprint import Blueprint
from web.api.schemas import ApiError
from web.extensions import db, engine_env, now

blp = Blueprint("scheme", __name__, url_prefix="/api",
                description="Consultations, consultation days, participation places, statistics")
blp.before_request(authenticate)

ANY = {"metadata": {"description": "checked by the server; a bad value is answered 422 naming the field"}}


class Category(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    name_en = fields.String()


class CategoriesOut(Schema):
    content = fields.List(fields.Nested(Category), required=True)
    response = fields.List(fields.Nested(Category), required=True)


class CategoriesQuery(Schema):
    group = fields.String(metadata={"description": "a window (group id) with its own list; default set without"})


class PersonIn(Schema):
    name = fields.String(required=True, validate=validate.Length(max=200))
    contact = fields.String(validate=validate.Length(max=200))


class ConsultationIn(Schema):
    received_on = fields.Raw(required=True, metadata={"description": "YYYY-MM-DD", "example": "2021-06-01"})
    content = fields.Raw(required=True, metadata={"description": "content category code", "example": "hardship"})
    response = fields.Raw(required=True, metadata={"description": "response category code", "example": "information"})
    group = fields.Raw(metadata={"description": "the window; default: the caller's only group"})
    channel = fields.Raw(metadata={"description": "visit_in, phone, home_visit, email or event; default visit_in"})
    case_id = fields.Raw(metadata={"description": "link to a case the caller may see (404 otherwise)"})
    open_case = fields.Raw(metadata={"description": "true: open a multi-agency case, intake pre-filled"})
    person = fields.Raw(metadata={"description": "{name, contact}; only with consent: given"})
    consent = fields.Raw(metadata={"description": "given, not_given or unknown (本人同意)"})
    note = fields.Raw(**ANY)


class ConsultationOut(Schema):
    id = fields.Integer(required=True)
    received_on = fields.Date(required=True)
    group = fields.String(attribute="group_id")
    channel = fields.String()
    content = fields.String()
    response = fields.String()
    case_id = fields.String(allow_none=True)
    event_id = fields.Integer(allow_none=True)
    kinds = fields.List(fields.String(), allow_none=True)
    complex = fields.Boolean(attribute="complex_issues")
    person = fields.Method("person_of", allow_none=True)
    consent = fields.String(allow_none=True)
    note = fields.String()
    created_at = fields.DateTime()

    def person_of(self, row: Consultation) -> dict[str, Any] | None:
        return {"name": row.person_name, "contact": row.person_contact} if row.person_name else None


class ConsultationPage(Schema):
    total = fields.Integer(required=True)
    items = fields.List(fields.Nested(ConsultationOut), required=True)


class ConsultationQuery(Schema):
    from_ = fields.String(data_key="from", metadata={"description": "received on or after (YYYY-MM-DD)"})
    to = fields.String(metadata={"description": "received on or before (YYYY-MM-DD)"})
    group = fields.String()
    channel = fields.String()
    content = fields.String()
    response = fields.String()
    event = fields.Integer(validate=validate.Range(1, MAX_INT))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, consultations.MAX_LIST))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, MAX_INT))


class EventIn(Schema):
    title = fields.Raw(required=True, metadata={"example": "くらしを守る総合相談会"})
    held_on = fields.Raw(required=True, metadata={"description": "YYYY-MM-DD"})
    place = fields.Raw(required=True)
    groups = fields.Raw(required=True, metadata={"description": "participating agencies (group ids)"})
    professionals = fields.Raw(metadata={"description": "codes: lawyer, financial_planner, ..."})
    note = fields.Raw(**ANY)


class EventReport(Schema):
    visitors = fields.Integer()
    complex = fields.Integer()
    kinds = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_group = fields.Dict(keys=fields.String(), values=fields.Integer())
    cases_opened = fields.Integer()
    text = fields.String(metadata={"example": "相談来所者 14人（複合課題 8人）、困窮 11件・仕事 1件・住宅 3件・その他 15件"})


class EventOut(Schema):
    id = fields.Integer(required=True)
    title = fields.String()
    held_on = fields.Date()
    place = fields.String()
    groups = fields.List(fields.String())
    professionals = fields.List(fields.String())
    note = fields.String()
    report = fields.Nested(EventReport)


class WalkInIn(Schema):
    group = fields.Raw(metadata={"description": "the participating agency recording it; default: the caller's only group"})
    kinds = fields.Raw(required=True, metadata={"description": "content kinds: hardship, work, housing, other, ..."})
    complex = fields.Raw(metadata={"description": "複合課題; default: more than one kind"})
    content = fields.Raw(**ANY)
    response = fields.Raw(**ANY)
    follow_up = fields.Raw(metadata={"description": "consultation (default) or case (opens a multi-agency case)"})
    person = fields.Raw(**ANY)
    consent = fields.Raw(**ANY)
    note = fields.Raw(**ANY)


class PlaceChange(Schema):
    name = fields.String(validate=validate.Length(max=200))
    kind = fields.String(metadata={"description": "activity, workplace or community"})
    description = fields.String(validate=validate.Length(max=4000))
    group = fields.String(allow_none=True)
    capacity = fields.Integer(allow_none=True, validate=validate.Range(1, 10_000))
    active = fields.Boolean(truthy={True}, falsy={False})


class PlaceIn(PlaceChange):
    name = fields.String(required=True, validate=validate.Length(max=200))
    kind = fields.String(required=True, metadata={"description": "activity, workplace or community"})


class PlaceOut(Schema):
    id = fields.Integer(required=True)
    name = fields.String()
    kind = fields.String()
    description = fields.String()
    group = fields.String(attribute="group_id", allow_none=True)
    capacity = fields.Integer(allow_none=True)
    active = fields.Boolean()


class StatisticsQuery(Schema):
    from_ = fields.String(data_key="from", metadata={"description": "first day (YYYY-MM-DD)"})
    to = fields.String(metadata={"description": "last day (YYYY-MM-DD), inclusive"})
    fiscal_year = fields.Integer(validate=validate.Range(2000, 2100),
                                 metadata={"description": "April YYYY to March YYYY+1"})


def _event(row: ConsultationEvent, report: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {"id": row.id, "title": row.title, "held_on": row.held_on, "place": row.place, "groups": row.groups,
           "professionals": row.professionals, "note": row.note}
    if report is not None:
        out["report"] = report
    return out


# ---------------------------------------------------------------- consultations


@blp.route("/consultations/categories")
@blp.arguments(CategoriesQuery, location="query")
@blp.response(200, CategoriesOut)
def consultation_categories(query):  # noqa: ANN001, ANN201
    """Content and response categories: the window's own list, else the default set."""
    return consultations.categories(engine_env(), query.get("group"))


@blp.route("/consultations", methods=["POST"])
@blp.arguments(ConsultationIn)
@blp.response(201, ConsultationOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
def record_consultation(body):  # noqa: ANN001, ANN201
    """Record a consultation at a window; it may open a case or link to one."""
    return consultations.record_consultation(db.session, engine_env(), g.actor, body, now())


@blp.route("/consultations")
@blp.arguments(ConsultationQuery, location="query")
@blp.response(200, ConsultationPage)
def list_consultations(query):  # noqa: ANN001, ANN201
    """Consultations of the caller's windows (every window for the secretariat), newest first."""
    filters = {("from" if k == "from_" else k): v for k, v in query.items()}
    rows, total = consultations.list_consultations(db.session, engine_env(), g.actor, filters, now())
    return {"total": total, "items": rows}


# ---------------------------------------------------------------- consultation days


@blp.route("/events", methods=["POST"])
@blp.arguments(EventIn)
@blp.response(201, EventOut)
@blp.alt_response(403, schema=ApiError)
def create_event(body):  # noqa: ANN001, ANN201
    """Set up a consultation day (総合相談会)."""
    row = consultations.create_event(db.session, engine_env(), g.actor, body, now())
    return _event(row)


@blp.route("/events")
@blp.response(200, EventOut(many=True))
def list_events():  # noqa: ANN201
    """Consultation days, newest first."""
    return [_event(r) for r in consultations.list_events(db.session)]


@blp.route("/events/<id:event_id>")
@blp.response(200, EventOut)
@blp.alt_response(404, schema=ApiError)
def get_event(event_id: int):  # noqa: ANN201
    """One consultation day with its report (counts only)."""
    env = engine_env()
    row = consultations.get_event(db.session, event_id)
    return _event(row, consultations.event_report(db.session, env, row))


@blp.route("/events/<id:event_id>/consultations", methods=["POST"])
@blp.arguments(WalkInIn)
@blp.response(201, ConsultationOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
def record_walk_in(body, event_id: int):  # noqa: ANN001, ANN201
    """A walk-in at the consultation day, recorded by a participating agency."""
    return consultations.record_walk_in(db.session, engine_env(), g.actor, event_id, body, now())


# ---------------------------------------------------------------- places


@blp.route("/places")
@blp.response(200, PlaceOut(many=True))
def list_places():  # noqa: ANN201
    """The register of participation places."""
    return places.list_places(db.session)


@blp.route("/places", methods=["POST"])
@blp.arguments(PlaceIn)
@blp.response(201, PlaceOut)
@blp.alt_response(403, schema=ApiError)
def add_place(body):  # noqa: ANN001, ANN201
    """Register a place (secretariat, administrators)."""
    return places.add_place(db.session, engine_env(), g.actor, body, now())


@blp.route("/places/<id:place_id>", methods=["PATCH"])
@blp.arguments(PlaceChange)
@blp.response(200, PlaceOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
def change_place(body, place_id: int):  # noqa: ANN001, ANN201
    """Change a place, or retire it (active: false)."""
    return places.change_place(db.session, engine_env(), g.actor, place_id, body, now())


# ---------------------------------------------------------------- statistics


def _report(query: dict[str, Any]) -> dict[str, Any]:
    return statistics.statistics(db.session, engine_env(), g.actor, query.get("from_"), query.get("to"),
                                 query.get("fiscal_year"), now())


@blp.route("/reports/statistics")
@blp.arguments(StatisticsQuery, location="query")
@blp.response(200)
@blp.alt_response(403, schema=ApiError)
def get_statistics(query):  # noqa: ANN001, ANN201
    """The scheme's figures for a period or a fiscal year (counts only, never personal data)."""
    return _report(query)


@blp.route("/reports/statistics.csv")
@blp.arguments(StatisticsQuery, location="query")
@blp.response(200, content_type="text/csv")
@blp.alt_response(403, schema=ApiError)
def get_statistics_csv(query):  # noqa: ANN001, ANN201
    """The same figures as CSV (UTF-8 with a BOM, Japanese headers)."""
    report = _report(query)
    name = f"statistics-{report['period']['from']}-{report['period']['to']}.csv"
    return Response(statistics.to_csv(report, engine_env()), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})



