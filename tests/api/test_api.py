"""The public JSON API, walked end to end as the personas of DOMAIN.md would use it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.casework.timers import fire_due

ELIGIBLE = {
    "multiple_targets": True, "all_targets_have_lead_department": True,
    "lead_department_can_handle_alone": False, "coordination_problem": False,
    "summary": "高齢者宅に平日昼間、孫らしき小学生が在宅", "consent": "given",
}
NOT_ELIGIBLE = {**ELIGIBLE, "multiple_targets": False, "lead_department_can_handle_alone": True}


def only_task(client, case_id: str, step: str) -> dict:  # noqa: ANN001
    case = client.get(f"/api/cases/{case_id}").json
    tasks = [t for t in case["open_tasks"] if t["step"] == step]
    assert len(tasks) == 1, (step, case["open_tasks"])
    return tasks[0]


def complete(client, case_id: str, step: str, data: dict) -> dict:  # noqa: ANN001
    task = only_task(client, case_id, step)
    r = client.post(f"/api/tasks/{task['id']}/complete", json={"data": data})
    assert r.status_code == 200, r.json
    return r.json["case"]


def test_every_call_needs_a_bearer_token(app) -> None:  # noqa: ANN001
    client = app.test_client()
    for url in ("/api/groups", "/api/tasks", "/api/cases/x", "/api/me"):
        r = client.get(url)
        assert r.status_code == 401
        assert r.json["error"]["code"] == "unauthorized"
    r = client.get("/api/groups", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


def test_groups_list_the_organisations(api) -> None:  # noqa: ANN001
    groups = api("caseworker").get("/api/groups").json
    by_id = {g["id"]: g["name"] for g in groups}
    assert by_id["secretariat"] == "多機関協働事業事務局"
    assert by_id["hokatsu-center"] == "地域包括支援センター"
    assert all(set(g) >= {"id", "name"} for g in groups)


def test_multi_agency_case_walks_all_six_steps_through_the_api(api, app, clock, session_factory, env) -> None:  # noqa: ANN001
    ref, sec = api("caseworker"), api("secretariat")
    r = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}})
    assert r.status_code == 201
    case = r.json
    assert case["number"].startswith("MA-") and case["status"] == "active" and case["process"] == "multi_agency"
    intake = only_task(ref, case["id"], "intake")
    assert intake["group"] == "hokatsu-center" and intake["form"] == "intake"
    detail = ref.get(f"/api/tasks/{intake['id']}").json
    assert detail["schema"]["properties"]["consent"] and detail["data"] == {"summary": "相談"}

    complete(ref, case["id"], "intake", ELIGIBLE)
    queue = sec.get("/api/tasks").json
    assert [t["step"] for t in queue if t["case_id"] == case["id"]] == ["assessment"]
    task = only_task(sec, case["id"], "assessment")
    assert sec.post(f"/api/tasks/{task['id']}/claim").json["assignee"] == "kyosei.tanaka"
    complete(sec, case["id"], "assessment", {"members": ["choju-anshin"], "assessment": "介護と不登校"})
    complete(sec, case["id"], "plan", {"issues": "介護・不登校", "policy": "見守り", "monitoring_interval": "P14D"})
    state = complete(sec, case["id"], "meeting", {
        "held_on": "2026-04-01", "participants": ["choju-anshin", "kodomo-sodan"],
        "roles": [{"group": "choju-anshin", "role": "介護サービス調整"}]})
    assert state["open_tasks"] == [] and len(state["timers"]) == 1

    for outcome, expected in (("continue", "monitoring"), ("meeting", "meeting"), ("reassess", "assessment")):
        clock.advance(days=15)
        assert fire_due(session_factory, env, clock.now()) == 1
        complete(sec, case["id"], "monitoring", {"next": outcome, "progress": "経過"})
        if expected == "meeting":
            complete(sec, case["id"], "meeting", {"held_on": "2026-05-01", "participants": ["choju-anshin"],
                                                  "roles": [{"group": "choju-anshin", "role": "継続"}]})
        elif expected == "assessment":
            complete(sec, case["id"], "assessment", {"members": ["choju-anshin"], "assessment": "再評価"})
            complete(sec, case["id"], "plan", {"issues": "i", "policy": "p", "monitoring_interval": "P1M"})
            complete(sec, case["id"], "meeting", {"held_on": "2026-06-01", "participants": ["choju-anshin"],
                                                  "roles": [{"group": "choju-anshin", "role": "継続"}]})
    clock.advance(days=32)
    assert fire_due(session_factory, env, clock.now()) == 1
    complete(sec, case["id"], "monitoring", {"next": "close", "progress": "定着"})
    final = complete(sec, case["id"], "closure", {"evaluation": "支援が定着した", "outcome": "established"})
    assert final["status"] == "completed" and final["open_tasks"] == [] and final["timers"] == []
    done = [h for h in final["history"] if h["kind"] == "task_completed"]
    assert [h["step"] for h in done][:4] == ["intake", "assessment", "plan", "meeting"]
    assert done[0]["actor"] == "hokatsu.sato" and done[0]["data"]["consent"] == "given"
    assert [h["step"] for h in done][-2:] == ["monitoring", "closure"]


def test_not_eligible_case_goes_back_to_the_referring_agency_with_advice(api) -> None:  # noqa: ANN001
    ref, lead = api("caseworker"), api("lead")
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    complete(ref, case["id"], "intake", NOT_ELIGIBLE)
    advice = only_task(lead, case["id"], "advice")
    assert advice["group"] == "coordination-lead"
    complete(lead, case["id"], "advice", {"advice": "長寿安心課の介護サービスで対応可能です"})
    back = only_task(ref, case["id"], "advice_received")
    assert back["group"] == "hokatsu-center"
    final = complete(ref, case["id"], "advice_received", {"acknowledged": True})
    assert final["status"] == "completed"


def test_emergency_hands_over_to_a_linked_multi_agency_case(api) -> None:  # noqa: ANN001
    finder = api("caseworker")
    case = finder.post("/api/cases", json={"process": "emergency", "data": {"summary": "異臭・応答なし"}}).json
    assert case["number"].startswith("EM-")
    complete(finder, case["id"], "judge_urgency", {"urgency": "high", "danger_to": ["life"], "situation": "応答なし"})
    complete(finder, case["id"], "respond", {"action": "request", "requested_groups": ["choju-anshin"],
                                             "response": "救急要請"})
    # 長寿安心課, asked to help, confirms from its own queue.
    complete(api("elder_care"), case["id"], "confirm_request", {"acknowledged": True, "action_taken": "同行した"})
    complete(finder, case["id"], "end_emergency", {"outcome": "入院"})
    final = complete(finder, case["id"], "continuing_support", {"continue_support": True, "reason": "退院後の生活"})
    assert final["status"] == "completed"
    assert [(c["relation"], c["process"]) for c in final["linked_cases"]] == [("handed_over_to", "multi_agency")]
    new = finder.get(f"/api/cases/{final['linked_cases'][0]['id']}").json
    assert new["linked_cases"][0]["id"] == case["id"] and new["linked_cases"][0]["relation"] == "handed_over_from"
    started = next(h for h in new["history"] if h["kind"] == "case_started")
    assert started["data"]["origin_case"]["number"] == case["number"]
    assert started["data"]["emergency"]["urgency"] == "high"
    assert only_task(finder, new["id"], "intake")["group"] == "hokatsu-center"


def test_a_request_for_help_with_no_agency_is_refused_naming_the_field(api) -> None:  # noqa: ANN001
    finder = api("caseworker")
    case = finder.post("/api/cases", json={"process": "emergency"}).json
    complete(finder, case["id"], "judge_urgency", {"urgency": "high", "danger_to": ["life"], "situation": "応答なし"})
    task = only_task(finder, case["id"], "respond")
    r = finder.post(f"/api/tasks/{task['id']}/complete",
                    json={"data": {"action": "request", "requested_groups": [], "response": "救急要請"}})
    assert r.status_code == 422
    error = r.json["error"]
    assert set(error["fields"]) == {"requested_groups"}
    ja, _, en = error["fields"]["requested_groups"].partition(" / ")
    assert ja and en
    assert only_task(finder, case["id"], "respond")["id"] == task["id"]


def test_emergency_without_continuation_starts_nothing(api) -> None:  # noqa: ANN001
    finder = api("caseworker")
    case = finder.post("/api/cases", json={"process": "emergency", "data": {"summary": "相談"}}).json
    complete(finder, case["id"], "judge_urgency", {"urgency": "low", "danger_to": [], "situation": "s"})
    complete(finder, case["id"], "respond", {"action": "self", "response": "訪問"})
    complete(finder, case["id"], "end_emergency", {"outcome": "解決"})
    final = complete(finder, case["id"], "continuing_support", {"continue_support": False})
    assert final["status"] == "completed" and final["linked_cases"] == []


def test_invalid_submission_names_the_fields_and_moves_nothing(api) -> None:  # noqa: ANN001
    ref = api("caseworker")
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    task = only_task(ref, case["id"], "intake")
    before = ref.get(f"/api/cases/{case['id']}").json
    r = ref.post(f"/api/tasks/{task['id']}/complete",
                 json={"data": {**ELIGIBLE, "consent": "maybe", "multiple_targets": "yes"}})
    assert r.status_code == 422
    assert set(r.json["error"]["fields"]) == {"consent", "multiple_targets"}
    after = ref.get(f"/api/cases/{case['id']}").json
    assert after == before


@pytest.mark.parametrize("body,status,field", [
    ({"data": {}}, 422, "process"),
    ({"process": "nope"}, 422, "process"),
    ({"process": "multi_agency", "data": [1]}, 422, "data"),
    ({"process": "multi_agency", "group": "no-such-group"}, 422, "group"),
    ({"process": "multi_agency", "group": "jutaku"}, 403, "group"),
])
def test_bad_case_requests_are_refused_with_the_field_named(api, body, status, field) -> None:  # noqa: ANN001
    r = api("caseworker").post("/api/cases", json=body)
    assert r.status_code == status, r.json
    assert field in r.json["error"]["fields"]


def test_caller_with_several_groups_must_name_the_referring_group(api) -> None:  # noqa: ANN001
    sec = api("secretariat")  # secretariat + chiiki-kyosei
    r = sec.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}})
    assert r.status_code == 422 and "group" in r.json["error"]["fields"]
    r = sec.post("/api/cases", json={"process": "multi_agency", "group": "chiiki-kyosei", "data": {"summary": "相談"}})
    assert r.status_code == 201 and r.json["referring_group"] == "chiiki-kyosei"


def test_malformed_json_is_a_400(api) -> None:  # noqa: ANN001
    ref = api("caseworker")
    r = ref.client.post("/api/cases", data="{not json", headers={**ref.headers, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json["error"]["code"] == "malformed"


def test_outsiders_get_404_for_cases_and_tasks_they_may_not_see(api) -> None:  # noqa: ANN001
    ref, outsider = api("caseworker"), api("outsider")
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "秘密"}}).json
    task = only_task(ref, case["id"], "intake")
    assert outsider.get(f"/api/cases/{case['id']}").status_code == 404
    assert outsider.get(f"/api/tasks/{task['id']}").status_code == 404
    assert outsider.post(f"/api/tasks/{task['id']}/complete", json={"data": ELIGIBLE}).status_code == 404
    assert outsider.post(f"/api/tasks/{task['id']}/claim").status_code == 404
    assert outsider.get("/api/cases/does-not-exist").status_code == 404
    assert task["id"] not in [t["id"] for t in outsider.get("/api/tasks").json]


def test_second_claim_and_second_completion_conflict(api) -> None:  # noqa: ANN001
    ref, sec, sup = api("caseworker"), api("secretariat"), api("supervisor")
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    complete(ref, case["id"], "intake", ELIGIBLE)
    task = only_task(sec, case["id"], "assessment")
    assert sec.post(f"/api/tasks/{task['id']}/claim").status_code == 200
    r = sup.post(f"/api/tasks/{task['id']}/claim")
    assert r.status_code == 409 and r.json["error"]["code"] == "conflict"
    r = sup.post(f"/api/tasks/{task['id']}/complete", json={"data": {"members": ["jutaku"], "assessment": "a"}})
    assert r.status_code == 409
    ok = sec.post(f"/api/tasks/{task['id']}/complete", json={"data": {"members": ["jutaku"], "assessment": "a"}})
    assert ok.status_code == 200
    again = sec.post(f"/api/tasks/{task['id']}/complete", json={"data": {"members": ["jutaku"], "assessment": "a"}})
    assert again.status_code == 409


def test_supervisor_assigns_and_staff_cannot(api) -> None:  # noqa: ANN001
    ref, sec, sup = api("caseworker"), api("secretariat"), api("supervisor")
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    complete(ref, case["id"], "intake", ELIGIBLE)
    task = only_task(sec, case["id"], "assessment")
    assert sec.post(f"/api/tasks/{task['id']}/assign", json={"assignee": "kyosei.kimura"}).status_code == 403
    r = sup.post(f"/api/tasks/{task['id']}/assign", json={"assignee": "kyosei.tanaka"})
    assert r.status_code == 200 and r.json["assignee"] == "kyosei.tanaka"
    r = sup.post(f"/api/tasks/{task['id']}/assign", json={"assignee": "hokatsu.sato"})
    assert r.status_code == 422 and "assignee" in r.json["error"]["fields"]
    assert sec.post(f"/api/tasks/{task['id']}/release").json["assignee"] is None


def test_draft_is_kept_and_offered_back(api) -> None:  # noqa: ANN001
    ref = api("caseworker")
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    task = only_task(ref, case["id"], "intake")
    assert ref.put(f"/api/tasks/{task['id']}/draft", json={"data": {"summary": "途中"}}).status_code == 200
    assert ref.get(f"/api/tasks/{task['id']}").json["data"] == {"summary": "途中"}


def test_queue_orders_by_due_date_and_shows_the_contract_fields(api, clock) -> None:  # noqa: ANN001
    ref = api("caseworker")
    ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}})
    clock.advance(timedelta(hours=1))
    ref.post("/api/cases", json={"process": "emergency", "data": {"summary": "相談"}})
    queue = ref.get("/api/tasks").json
    assert [t["step"] for t in queue] == ["judge_urgency", "intake"]  # PT4H due before P3D
    assert set(queue[0]) >= {"id", "case_id", "step", "name", "group", "assignee", "form", "created_at", "due_at"}


def test_openapi_document_describes_the_api(app) -> None:  # noqa: ANN001
    doc = app.test_client().get("/api/openapi.json").json
    assert doc["openapi"].startswith("3.")
    for path in ("/api/cases", "/api/cases/{case_id}", "/api/tasks", "/api/tasks/{task_id}",
                 "/api/tasks/{task_id}/claim", "/api/tasks/{task_id}/complete", "/api/groups"):
        assert path in doc["paths"], path
    assert "CaseOut" in doc["components"]["schemas"]
