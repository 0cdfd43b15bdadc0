"""A case's history through the API comes in pages: `GET /api/cases/<id>` and a completion's
response carry the newest 50 events and a link to the older ones, so no response grows with the
case's age; `GET /api/cases/<id>/history?before=&limit=` walks back to the first event."""

from __future__ import annotations

from engine.casework import cases
from engine.casework.timers import fire_due
from engine.models import Case
from tests.api.test_api import ELIGIBLE

SETUP = [
    ("assessment", {"members": ["choju-anshin"], "assessment": "介護と不登校"}),
    ("plan", {"issues": "介護・不登校", "policy": "見守り", "monitoring_interval": "P14D"}),
    ("meeting", {"held_on": "2026-04-01", "participants": ["choju-anshin"],
                 "roles": [{"group": "choju-anshin", "role": "介護サービス調整"}]}),
]


def _open_task(session, case_id: str):  # noqa: ANN001, ANN202
    """The secretariat's open step (a monitoring round's role reports are the role holders')."""
    (task,) = [t for t in cases.case_open_tasks(session, session.get(Case, case_id)) if t.step != "role_report"]
    return task


def aged_case(session, env, personas, clock, session_factory, rounds: int) -> str:  # noqa: ANN001
    """A multi-agency case after `rounds` fortnightly monitoring rounds, driven through the engine."""
    case = cases.start_case(session, env, personas.caseworker, "multi_agency", {"summary": "相談"}, None, clock.now())
    cases.complete_task(session, env, personas.caseworker, _open_task(session, case.id).id, ELIGIBLE, clock.now())
    for _, data in SETUP:
        cases.complete_task(session, env, personas.secretariat, _open_task(session, case.id).id, data, clock.now())
    for _ in range(rounds):
        clock.advance(days=15)
        assert fire_due(session_factory, env, clock.now()) == 1
        session.expire_all()
        cases.complete_task(session, env, personas.secretariat, _open_task(session, case.id).id,
                            {"next": "continue", "progress": "経過"}, clock.now())
    return case.id


def test_an_old_case_answers_its_newest_50_events_and_a_link_to_the_rest(
        api, session, env, personas, clock, session_factory) -> None:  # noqa: ANN001
    case_id = aged_case(session, env, personas, clock, session_factory, rounds=30)
    every = [e.id for e in cases.case_history(session, session.get(Case, case_id))]
    assert len(every) > 100
    sec = api("secretariat")
    body = sec.get(f"/api/cases/{case_id}").json
    assert [e["id"] for e in body["history"]] == every[-50:]  # the newest, in the order they happened
    assert set(body["history"][0]) == {"id", "at", "kind", "step", "step_name", "task_id", "actor", "data"}

    seen = [e["id"] for e in body["history"]]
    link = body["history_next"]
    pages = 0
    while link:
        assert link.startswith(f"/api/cases/{case_id}/history?")
        page = sec.get(link)
        assert page.status_code == 200, page.json
        assert len(page.json["history"]) <= 50
        seen = [e["id"] for e in page.json["history"]] + seen
        link = page.json["history_next"]
        pages += 1
    assert seen == every and pages == (len(every) - 1) // 50
    assert sec.get(f"/api/cases/{case_id}/history?limit=7").json["history"] == \
        sec.get(f"/api/cases/{case_id}").json["history"][-7:]


def test_a_completion_on_an_old_case_answers_a_bounded_case(
        api, session, env, personas, clock, session_factory) -> None:  # noqa: ANN001
    case_id = aged_case(session, env, personas, clock, session_factory, rounds=30)
    clock.advance(days=15)
    assert fire_due(session_factory, env, clock.now()) == 1
    sec = api("secretariat")
    task = next(t for t in sec.get(f"/api/cases/{case_id}").json["open_tasks"] if t["step"] == "monitoring")
    r = sec.post(f"/api/tasks/{task['id']}/complete", json={"data": {"next": "continue", "progress": "経過"}})
    assert r.status_code == 200, r.json
    history = r.json["case"]["history"]
    assert len(history) == 50 and r.json["case"]["history_next"]
    assert any(e["kind"] == "task_completed" and e["task_id"] == task["id"] for e in history)


def test_a_young_case_has_its_whole_history_and_no_link(api) -> None:  # noqa: ANN001
    ref = api("caseworker")
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    assert [e["kind"] for e in case["history"]][:1] == ["case_started"] and case["history_next"] is None
    page = ref.get(f"/api/cases/{case['id']}/history").json
    assert page == {"history": case["history"], "history_next": None}


def test_bad_history_paging_is_refused_by_field_name(api) -> None:  # noqa: ANN001
    ref = api("caseworker")
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    for query, field in (("limit=0", "limit"), ("limit=501", "limit"), ("limit=x", "limit"),
                         ("before=0", "before"), ("before=-3", "before"), ("before=99999999999", "before")):
        r = ref.get(f"/api/cases/{case['id']}/history?{query}")
        assert r.status_code == 422, (query, r.status_code)
        assert field in r.json["error"]["fields"], (query, r.json)


def test_history_of_a_case_the_caller_may_not_see_is_refused_like_the_case(api) -> None:  # noqa: ANN001
    case = api("caseworker").post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    outsider = api("outsider")
    r = outsider.get(f"/api/cases/{case['id']}/history")
    assert r.status_code == outsider.get(f"/api/cases/{case['id']}").status_code
    assert r.status_code in (403, 404) and "history" not in r.json
    r = api("caseworker").get("/api/cases/no-such-case/history")
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
