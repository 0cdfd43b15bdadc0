"""Cases: open one, read one, list those the caller may see; a case's household."""

from __future__ import annotations

from flask import g

from engine.casework import cases, household
from engine.clock import city_today
from web.api import render
from web.api.auth import authenticate
from web.api.blueprint import Blueprint
from web.api.schemas import (
    ApiError,
    CaseIn,
    CaseListItem,
    CaseOut,
    CaseQuery,
    HistoryPageOut,
    HistoryQuery,
    HouseholdIn,
    HouseholdOut,
)
from web.extensions import db, engine_env, now

blp = Blueprint("cases", __name__, url_prefix="/api/cases", description="Cases (案件)")
blp.before_request(authenticate)


@blp.route("", methods=["POST"])
@blp.arguments(CaseIn)
@blp.response(201, CaseOut)
@blp.alt_response(422, schema=ApiError)
@blp.alt_response(403, schema=ApiError)
def open_case(body):  # noqa: ANN001, ANN201
    """Open a case of a process; the referring lane belongs to `group`."""
    env = engine_env()
    case = cases.start_case(db.session, env, g.actor, body["process"], body["data"], body["group"], now())
    return render.case(db.session, env, g.actor, case)


TOTAL_HEADER = {"X-Total-Count": {"description": "how many cases match, over all pages",
                                   "schema": {"type": "integer", "minimum": 0}}}


@blp.route("", methods=["GET"])
@blp.arguments(CaseQuery, location="query")
@blp.response(200, CaseListItem(many=True), headers=TOTAL_HEADER)
def list_cases(query):  # noqa: ANN001, ANN201
    """Cases the caller may see, whatever their state (active, waiting, closed), newest first: `limit`
    (at most 500) after the first `offset`, filtered and searched. The number of all that match is in
    the `X-Total-Count` header."""
    found = cases.search_cases(db.session, engine_env(), g.actor, now=now(), **query)
    return [{"id": c.id, "number": c.number, "process": c.process_key, "status": c.status,
             "referring_group": c.referring_group_id, "summary": c.summary, "created_at": c.created_at,
             "updated_at": c.updated_at, "last_event_at": c.last_event_at,
             "steps": [{"kind": s.kind, "step": s.step, "name": s.name} for s in found.steps.get(c.id, [])]}
            for c in found.cases], {"X-Total-Count": str(found.total)}


@blp.route("/<case_id>")
@blp.response(200, CaseOut)
@blp.alt_response(404, schema=ApiError)
def get_case(case_id: str):  # noqa: ANN201
    """One case: status, open tasks, history, linked cases and pending timers."""
    env = engine_env()
    case = cases.get_case(db.session, env, g.actor, case_id, now())
    return render.case(db.session, env, g.actor, case)


@blp.route("/<case_id>/history")
@blp.arguments(HistoryQuery, location="query")
@blp.response(200, HistoryPageOut)
@blp.alt_response(404, schema=ApiError)
def history(query, case_id: str):  # noqa: ANN001, ANN201
    """A page of the case's history, oldest first: the `limit` events before event `before`, and
    `history_next`, the link to the page before them."""
    case = cases.get_case(db.session, engine_env(), g.actor, case_id, now())
    return render.history(db.session, case, before=query.get("before"), limit=query["limit"])


def _household(members: list) -> dict:
    today = city_today(now())
    return {"members": [m.to_dict(today) for m in members]}


@blp.route("/<case_id>/household", methods=["GET"])
@blp.response(200, HouseholdOut)
@blp.alt_response(404, schema=ApiError)
def get_household(case_id: str):  # noqa: ANN201
    """The case's household (世帯), each member with their age; an audited read."""
    return _household(household.get(db.session, engine_env(), g.actor, case_id, now()))


@blp.route("/<case_id>/household", methods=["PUT"])
@blp.arguments(HouseholdIn)
@blp.response(200, HouseholdOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
@blp.alt_response(422, schema=ApiError)
def put_household(body, case_id: str):  # noqa: ANN001, ANN201
    """Replace the case's household as a whole. Only those who may edit the case (its referring
    agency, the secretariat, its support meeting's agencies, whoever has one of its steps open)
    may; others who may see it get 403. Every bad field is named (`members.2.birth_date`) and
    nothing is changed."""
    return _household(household.replace(db.session, engine_env(), g.actor, case_id, body, now()))
