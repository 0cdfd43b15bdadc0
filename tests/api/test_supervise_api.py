"""The supervisor's API: escalations, retry, move and bulk reassignment, with their refusals."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from engine.casework import escalation
from engine.models import CaseEvent
from engine.settings import ROOT
from engine.status import EventKind
from engine.workflow import specs
from tests.api.test_api import ELIGIBLE, complete, only_task
from tests.engine.support import diagram


def _at_assessment(api) -> tuple[str, dict]:  # noqa: ANN001
    case = api("caseworker").post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    complete(api("caseworker"), case["id"], "intake", ELIGIBLE)
    return case["id"], only_task(api("supervisor"), case["id"], "assessment")


def test_escalations_are_listed_for_the_groups_supervisor_and_acknowledged(api, session_factory, env,  # noqa: ANN001
                                                                          clock) -> None:
    case_id, task = _at_assessment(api)
    assert api("supervisor").get("/api/escalations").json == {"items": [], "total": 0}
    clock.advance(days=15)
    assert escalation.escalate_due(session_factory, env, clock.now()) == 1
    r = api("supervisor").get("/api/escalations")
    assert r.status_code == 200 and r.json["total"] == 1
    (item,) = r.json["items"]
    assert (item["task_id"], item["level"], item["audience"], item["group"]) == (
        task["id"], 1, "supervisor", "secretariat")
    assert item["case_number"] and item["step"] == "assessment" and item["acknowledged_at"] is None
    assert api("caseworker").get("/api/escalations").status_code == 403
    assert api("lead").get("/api/escalations").json["total"] == 0
    # the case's history says so too
    history = api("supervisor").get(f"/api/cases/{case_id}").json["history"]
    assert [h["data"]["level"] for h in history if h["kind"] == EventKind.TASK_ESCALATED] == [1]

    assert api("lead").post(f"/api/escalations/{item['id']}/acknowledge", json={}).status_code == 404
    r = api("supervisor").post(f"/api/escalations/{item['id']}/acknowledge", json={"note": "担当者を追加"})
    assert r.status_code == 200 and r.json["acknowledged_by"] == "kyosei.kimura"
    assert api("supervisor").get("/api/escalations").json["total"] == 0
    assert api("supervisor").get("/api/escalations?all=true").json["total"] == 1
    assert api("supervisor").post("/api/escalations/99999/acknowledge", json={}).status_code == 404
    r = api("supervisor").post(f"/api/escalations/{item['id']}/acknowledge", json={"note": 5})
    assert r.status_code == 422 and "note" in r.json["error"]["fields"]


def _probe_in_error(api, session_factory, env, clock, tmp_path: Path) -> str:  # noqa: ANN001
    folder = diagram(tmp_path, script="total = 2 / divisor")
    with session_factory() as s:
        specs.deploy(s, specs.read_sources(folder, ROOT / "forms"), env.org, clock.now())
    case = api("secretariat").post("/api/cases", json={"process": "probe", "data": {"divisor": 0},
                                                       "group": "chiiki-kyosei"}).json
    task = only_task(api("secretariat"), case["id"], "work")
    r = api("secretariat").post(f"/api/tasks/{task['id']}/complete", json={"data": {"advice": "助言"}})
    assert r.status_code == 422
    return case["id"]


def test_retry_a_case_in_error(api, session_factory, env, clock, tmp_path: Path) -> None:  # noqa: ANN001
    case_id = _probe_in_error(api, session_factory, env, clock, tmp_path)
    assert api("secretariat").post(f"/api/cases/{case_id}/retry", json={}).status_code == 403
    assert api("outsider").post(f"/api/cases/{case_id}/retry", json={}).status_code == 403
    assert api("supervisor").post("/api/cases/nope/retry", json={}).status_code == 404
    r = api("supervisor").post(f"/api/cases/{case_id}/retry", json={})
    assert r.status_code == 422 and r.json["error"]["code"] == "workflow_error"
    assert r.json["error"]["fields"] == {"element": "middle"}
    assert api("supervisor").get(f"/api/cases/{case_id}").json["status"] == "error"
    r = api("supervisor").post(f"/api/cases/{case_id}/retry", json={"data": "x"})
    assert r.status_code == 422 and "data" in r.json["error"]["fields"]
    r = api("supervisor").post(f"/api/cases/{case_id}/retry", json={"data": {"divisor": 2}})
    assert r.status_code == 200, r.json
    assert r.json["status"] == "completed" and r.json["error"] is None
    kinds = [h["kind"] for h in r.json["history"]]
    assert EventKind.CASE_RETRIED in kinds and kinds.count(EventKind.TASK_COMPLETED) == 1
    r = api("supervisor").post(f"/api/cases/{case_id}/retry", json={})
    assert r.status_code == 409


def test_move_a_case_with_a_reason(api) -> None:  # noqa: ANN001
    case_id, _ = _at_assessment(api)
    r = api("supervisor").post(f"/api/cases/{case_id}/move", json={"to_step": "intake"})
    assert r.status_code == 422 and "reason" in r.json["error"]["fields"]
    r = api("supervisor").post(f"/api/cases/{case_id}/move", json={"to_step": "nowhere", "reason": "x"})
    assert r.status_code == 422 and set(r.json["error"]["fields"]) == {"to_step"}
    assert "nowhere" in r.json["error"]["message"]
    assert api("caseworker").post(f"/api/cases/{case_id}/move",
                                  json={"to_step": "intake", "reason": "x"}).status_code == 403
    r = api("supervisor").post(f"/api/cases/{case_id}/move", json={"to_step": "intake", "reason": "情報不足"})
    assert r.status_code == 200, r.json
    assert [t["step"] for t in r.json["open_tasks"]] == ["intake"]
    (moved,) = [h for h in r.json["history"] if h["kind"] == EventKind.CASE_MOVED]
    assert moved["actor"] == "kyosei.kimura" and moved["data"]["reason"] == "情報不足"


def test_bulk_assign(api, session_factory) -> None:  # noqa: ANN001
    ids = [_at_assessment(api)[1]["id"] for _ in range(2)]
    r = api("supervisor").post("/api/tasks/assign", json={"tasks": [*ids, "missing"], "assignee": "kyosei.tanaka"})
    assert r.status_code == 200
    assert [(x["task_id"], x["ok"]) for x in r.json["results"]] == [(ids[0], True), (ids[1], True),
                                                                    ("missing", False)]
    assert r.json["results"][2]["error"]["code"] == "not_found"
    for task_id in ids:
        assert api("secretariat").get(f"/api/tasks/{task_id}").json["assignee"] == "kyosei.tanaka"
    assert api("caseworker").post("/api/tasks/assign",
                                  json={"tasks": ids, "assignee": "kyosei.tanaka"}).status_code == 403
    r = api("supervisor").post("/api/tasks/assign", json={"tasks": "x", "assignee": "kyosei.tanaka"})
    assert r.status_code == 422 and "tasks" in r.json["error"]["fields"]
    r = api("supervisor").post("/api/tasks/assign", json={"tasks": [], "assignee": "kyosei.tanaka"})
    assert r.status_code == 422 and "tasks" in r.json["error"]["fields"]
    with session_factory() as s:
        events = s.scalars(select(CaseEvent).where(CaseEvent.kind == EventKind.TASK_ASSIGNED)).all()
    assert len(events) == 2


def test_escalation_sweep_runs_with_the_timer_sweep(api, session_factory, env, clock) -> None:  # noqa: ANN001
    from engine.ops.worker import sweep

    _at_assessment(api)
    clock.advance(days=14, hours=1)
    sweep(session_factory, env, clock)
    sweep(session_factory, env, clock)
    assert api("supervisor").get("/api/escalations").json["total"] == 1
    clock.advance(timedelta(days=14))
    sweep(session_factory, env, clock)
    assert api("lead").get("/api/escalations").json["total"] == 1
