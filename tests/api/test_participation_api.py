"""Participation support (参加支援) through the API: the support plan's participation need
hands over to a linked participation case after the support meeting; the secretariat
matches the person to a registered place, the check-in timer brings the trial back after
its interval, a failed trial is matched again and a settled one ends the case. The
multi-agency case shows the linked case, and the 図4 decision is on it."""

from __future__ import annotations

from engine.casework.timers import fire_due
from tests.api.test_api import ELIGIBLE, complete, only_task

PLAN = {"issues": "ひきこもりの長男と高齢の母", "policy": "長男の社会参加を支える", "monitoring_interval": "P1M",
        "participation": True, "participation_need": "週1回、人と関われる居場所"}
MEETING = {"held_on": "2026-04-10", "participants": ["choju-anshin"],
           "roles": [{"group": "choju-anshin", "role": "母の介護"}],
           "plan_review_held_on": "2026-04-10", "plan_review_result": "appropriate",
           "plan_review_comments": "参加支援を併せて行う"}


def _places(sec) -> tuple[int, int]:  # noqa: ANN001
    cafe = sec.post("/api/places", json={"name": "ふらっとカフェ庄内", "kind": "community", "capacity": 10})
    farm = sec.post("/api/places", json={"name": "農園ボランティア", "kind": "activity"})
    assert cafe.status_code == 201 and farm.status_code == 201, (cafe.json, farm.json)
    return cafe.json["id"], farm.json["id"]


def test_participation_need_is_matched_tried_rematched_and_settled(api, clock, session_factory, env) -> None:  # noqa: ANN001
    ref, sec = api("caseworker"), api("secretariat")
    cafe, farm = _places(sec)
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    after = complete(ref, case["id"], "intake", ELIGIBLE)
    assert after["decision"] == {"result": "eligible", "rule": "Rule_several_each_department"}
    complete(sec, case["id"], "assessment", {"members": ["choju-anshin"], "assessment": "長男の孤立"})
    complete(sec, case["id"], "plan", PLAN)
    state = complete(sec, case["id"], "meeting", MEETING)

    # The meeting hands over to a participation case; the six-step case goes on to monitoring.
    assert len(state["timers"]) == 1 and state["status"] == "active"
    [link] = state["linked_cases"]
    assert (link["process"], link["relation"], link["status"]) == ("participation", "handed_over_to", "active")
    ps = sec.get(f"/api/cases/{link['id']}").json
    assert ps["number"].startswith("PS-") and ps["linked_cases"][0]["id"] == case["id"]
    started = next(h for h in ps["history"] if h["kind"] == "case_started")["data"]
    assert started["multi_agency"] == {"participation_need": PLAN["participation_need"], "policy": PLAN["policy"]}

    # A place that is not in the register is refused and nothing moves.
    match = only_task(sec, ps["id"], "match")
    bad = sec.post(f"/api/tasks/{match['id']}/complete", json={"data": {"place_id": 999}})
    assert bad.status_code == 422 and "place_id" in bad.json["error"]["fields"]
    assert only_task(sec, ps["id"], "match")["id"] == match["id"]

    ps = complete(sec, ps["id"], "match", {"place_id": cafe, "trial_plan": "週1回、午後に参加", "checkin_interval": "P7D"})
    [timer] = ps["timers"]
    assert ps["open_tasks"] == [] and timer["step"] == "checkin_due"
    assert fire_due(session_factory, env, clock.advance(days=6)) == 0
    assert fire_due(session_factory, env, clock.advance(days=1, seconds=1)) == 1
    checkin = only_task(sec, ps["id"], "checkin")
    assert checkin["group"] == "chiiki-kyosei"

    # Not a fit: match again, at another place.
    complete(sec, ps["id"], "checkin", {"progress": "人が多く負担", "next": "rematch"})
    complete(sec, ps["id"], "match", {"place_id": farm})  # the default check-in interval (P14D)
    # (the six-step case's own monitoring timer, a month on, fires in between)
    fire_due(session_factory, env, clock.advance(days=14, seconds=1))
    complete(sec, ps["id"], "checkin", {"progress": "少しずつ慣れてきた", "next": "continue"})
    fire_due(session_factory, env, clock.advance(days=14, seconds=1))
    done = complete(sec, ps["id"], "checkin", {"progress": "毎週通えている", "next": "settle"})
    assert done["status"] == "completed" and done["closure_reason"] == "settled"

    # Its figures: two placements started, one rematched, one settled; the plan review counted.
    stats = api("supervisor").get("/api/reports/statistics?fiscal_year=2026").json
    assert stats["participation"] == {"cases": 1, "placements": 2, "placements_by_kind": {"activity": 1, "community": 1},
                                      "settled": 1, "rematched": 1, "ended": 0, "on_trial": 0}
    assert stats["meetings"]["reviews"]["plan"] == {"appropriate": 1}
    assert stats["cases"]["by_decision"]["eligible"] == 1


def test_a_plan_without_participation_need_hands_over_nothing(api) -> None:  # noqa: ANN001
    ref, sec = api("caseworker"), api("secretariat")
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    complete(ref, case["id"], "intake", ELIGIBLE)
    complete(sec, case["id"], "assessment", {"members": ["choju-anshin"], "assessment": "a"})
    complete(sec, case["id"], "plan", {"issues": "i", "policy": "p", "monitoring_interval": "P1M"})
    state = complete(sec, case["id"], "meeting", {k: v for k, v in MEETING.items() if not k.startswith("plan_review")})
    assert state["linked_cases"] == [] and len(state["timers"]) == 1


def test_places_register_is_kept_by_the_secretariat_only(api) -> None:  # noqa: ANN001
    sec, worker = api("secretariat"), api("caseworker")
    assert worker.post("/api/places", json={"name": "x", "kind": "community"}).status_code == 403
    bad = sec.post("/api/places", json={"name": "x", "kind": "shop"})
    assert bad.status_code == 422 and set(bad.json["error"]["fields"]) == {"kind"}
    place = sec.post("/api/places", json={"name": "居場所", "kind": "community"}).json
    assert sec.patch(f"/api/places/{place['id']}", json={"active": False}).json["active"] is False
    assert sec.patch("/api/places/9999", json={"active": False}).status_code == 404
    assert [p["name"] for p in worker.get("/api/places").json] == ["居場所"]


def test_closure_records_the_evaluation_review_and_resource_gaps(api, clock, session_factory, env) -> None:  # noqa: ANN001
    ref, sec = api("caseworker"), api("secretariat")
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    complete(ref, case["id"], "intake", ELIGIBLE)
    complete(sec, case["id"], "assessment", {"members": ["choju-anshin"], "assessment": "a"})
    complete(sec, case["id"], "plan", {"issues": "i", "policy": "p", "monitoring_interval": "P14D"})
    complete(sec, case["id"], "meeting", {k: v for k, v in MEETING.items() if not k.startswith("plan_review")})
    fire_due(session_factory, env, clock.advance(days=15))
    complete(sec, case["id"], "monitoring", {"next": "close", "progress": "安定"})
    closure = {"evaluation": "支援が定着", "outcome": "established",
               "evaluation_review_held_on": "2026-05-01", "evaluation_review_result": "approved",
               "resource_gaps": [{"kind": "place_to_be", "need": "夜間の居場所"}, {"kind": "nowhere", "need": "x"}]}
    task = only_task(sec, case["id"], "closure")
    bad = sec.post(f"/api/tasks/{task['id']}/complete", json={"data": closure})
    assert bad.status_code == 422 and set(bad.json["error"]["fields"]) == {"resource_gaps.1.kind"}
    closure["resource_gaps"][1]["kind"] = "transport"
    done = complete(sec, case["id"], "closure", closure)
    assert done["status"] == "completed" and done["closure_reason"] == "established"
    stats = api("lead").get("/api/reports/statistics?from=2026-04-01&to=2026-04-30").json
    assert stats["resource_gaps"]["by_kind"] == {"place_to_be": 1, "transport": 1}
    assert stats["meetings"]["reviews"]["closure"] == {"approved": 1}
    assert stats["cases"]["closures"] == {"established": 1}
