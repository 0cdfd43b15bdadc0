"""The designers' API (issue 9): versions, a version's files, validate, deploy, diff, migration of
running cases, forms; and who may use it."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from engine.models import FormVersion, ProcessDefinition
from engine.security import users
from engine.settings import ROOT
from tests.conftest import ApiClient

EMERGENCY = (ROOT / "processes" / "emergency.bpmn").read_text(encoding="utf-8")
# The same diagram with one step renamed (a changed element) ...
RENAMED = EMERGENCY.replace("2. 対応もしくは連携を要請", "2. 対応・連携の要請")
# ... and with the first step's id changed (removed judge_urgency, added judge_danger).
REPLACED = EMERGENCY.replace("judge_urgency", "judge_danger")
XML = {"Content-Type": "application/xml"}


@pytest.fixture
def designer(app, session, clock) -> ApiClient:  # noqa: ANN001
    user = users.add_user(session, "sekkei.nakamura", ["chiiki-kyosei"], ["designer"], clock.now(), "中村 亮")
    token = users.issue_token(session, user, clock.now())
    session.commit()
    return ApiClient(app.test_client(), token)


def _post_xml(client: ApiClient, url: str, xml: str):  # noqa: ANN202
    return client.client.post(url, data=xml.encode("utf-8"), headers={**client.headers, **XML})


def _deploy(client: ApiClient, xml: str, comment: str = "テスト") -> dict:
    response = _post_xml(client, f"/api/processes?comment={comment}", xml)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _versions(session, key: str) -> int:  # noqa: ANN001
    return session.scalar(select(func.count()).select_from(ProcessDefinition)
                          .where(ProcessDefinition.process_key == key))


def test_processes_list_every_process_with_its_versions(designer: ApiClient) -> None:
    body = designer.get("/api/processes").get_json()
    by_key = {p["key"]: p for p in body}
    assert set(by_key) >= {"multi_agency", "emergency", "outreach"}
    emergency = by_key["emergency"]
    assert emergency["name"] == "緊急対応" and emergency["latest_version"] == 1
    assert emergency["versions"][0]["version"] == 1 and emergency["versions"][0]["created_at"]


def test_version_files_are_served_as_xml(designer: ApiClient) -> None:
    response = designer.get("/api/processes/emergency/versions/1/bpmn")
    assert response.status_code == 200 and response.mimetype == "application/xml"
    assert response.get_data(as_text=True) == EMERGENCY
    dmn = designer.get("/api/processes/multi_agency/versions/1/dmn/intake_criteria.dmn")
    assert dmn.status_code == 200 and "<" in dmn.get_data(as_text=True)
    assert designer.get("/api/processes/multi_agency/versions/1/dmn/intake_criteria").status_code == 200
    assert designer.get("/api/processes/emergency/versions/9/bpmn").status_code == 404
    assert designer.get("/api/processes/nothing/versions/1/bpmn").get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("who", ["caseworker", "secretariat", "supervisor"])
def test_staff_get_403_from_the_designers_api(api, who: str) -> None:  # noqa: ANN001
    client = api(who)
    assert client.get("/api/processes").status_code == 403
    assert client.get("/api/processes/emergency/versions/1/bpmn").status_code == 403
    assert _post_xml(client, "/api/processes/validate", EMERGENCY).status_code == 403
    assert _post_xml(client, "/api/processes", RENAMED).status_code == 403
    assert client.get("/api/processes/emergency/diff?from=1&to=1").status_code == 403
    assert client.get("/api/processes/emergency/migration?from=1&to=1").status_code == 403
    assert client.post("/api/processes/emergency/migration", json={"from": 1, "to": 1}).status_code == 403
    assert client.get("/api/forms").status_code == 403
    assert client.put("/api/forms/advice", json={"type": "object", "properties": {}}).status_code == 403
    response = client.get("/api/forms/advice")
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"


def test_admin_may_use_the_designers_api(api) -> None:  # noqa: ANN001
    assert api("admin").get("/api/processes").status_code == 200


def test_validate_answers_no_errors_for_a_deployed_diagram(designer: ApiClient) -> None:
    response = _post_xml(designer, "/api/processes/validate", EMERGENCY)
    assert response.status_code == 200
    assert response.get_json()["errors"] == []


def test_validate_names_the_element_of_each_problem(designer: ApiClient) -> None:
    broken = EMERGENCY.replace('value="emergency_judgement"', 'value="no_such_form"')
    errors = _post_xml(designer, "/api/processes/validate", broken).get_json()["errors"]
    assert any(e["element"] == "judge_urgency" and "no_such_form" in e["message"] for e in errors)


def test_validate_reports_bpmnlint_problems_with_their_elements(designer: ApiClient) -> None:
    # A task without a name breaks bpmnlint's label-required rule (an error in `recommended`).
    unnamed = EMERGENCY.replace('name="2. 対応もしくは連携を要請"', "")
    body = _post_xml(designer, "/api/processes/validate", unnamed).get_json()
    assert {"element": "respond", "message": "Element is missing label/name (bpmnlint label-required)"} \
        in body["errors"]


def test_validate_refuses_a_body_that_is_not_xml_with_an_error_not_a_500(designer: ApiClient) -> None:
    body = _post_xml(designer, "/api/processes/validate", "<bpmn:definitions").get_json()
    assert body["errors"] and body["errors"][0]["message"]
    empty = _post_xml(designer, "/api/processes/validate", "")
    assert empty.status_code == 422 and "body" in empty.get_json()["error"]["fields"]


def test_deploy_makes_the_next_version_with_author_and_comment(designer: ApiClient, session) -> None:  # noqa: ANN001
    assert _deploy(designer, RENAMED, "名称の変更") == {"key": "emergency", "version": 2, "created": True}
    versions = {p["key"]: p for p in designer.get("/api/processes").get_json()}["emergency"]["versions"]
    assert versions[1]["version"] == 2
    assert (versions[1]["author"], versions[1]["comment"]) == ("sekkei.nakamura", "名称の変更")
    assert designer.get("/api/processes/emergency/versions/2/bpmn").get_data(as_text=True) == RENAMED
    # the earlier version is untouched
    assert designer.get("/api/processes/emergency/versions/1/bpmn").get_data(as_text=True) == EMERGENCY
    # the same content again is that version, not a new one
    assert _deploy(designer, RENAMED) == {"key": "emergency", "version": 2, "created": False}


def test_a_refused_deploy_is_422_keyed_by_element_and_deploys_nothing(designer: ApiClient, session) -> None:  # noqa: ANN001
    broken = RENAMED.replace('value="emergency_judgement"', 'value="no_such_form"')
    response = _post_xml(designer, "/api/processes", broken)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid_definition" and "judge_urgency" in error["fields"]
    assert _versions(session, "emergency") == 1


def test_deploy_of_a_new_process_with_a_default_id(designer: ApiClient, session) -> None:  # noqa: ANN001
    fresh = REPLACED.replace('id="emergency"', 'id="Process_1"').replace('processRef="emergency"',
                                                                         'processRef="Process_1"')
    assert _deploy(designer, fresh) == {"key": "Process_1", "version": 1, "created": True}
    assert _versions(session, "emergency") == 1


def _open_emergency(api) -> dict:  # noqa: ANN001
    response = api("caseworker").post("/api/cases", json={"process": "emergency", "data": {"summary": "相談"}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_cases_show_their_version_and_a_new_case_uses_the_new_one(api, designer: ApiClient) -> None:  # noqa: ANN001
    old = _open_emergency(api)
    assert old["version"] == 1
    _deploy(designer, RENAMED)
    assert _open_emergency(api)["version"] == 2
    assert api("caseworker").get(f"/api/cases/{old['id']}").get_json()["version"] == 1


def test_diff_between_two_versions(designer: ApiClient) -> None:
    _deploy(designer, RENAMED)
    _deploy(designer, REPLACED)
    assert designer.get("/api/processes/emergency/diff?from=1&to=2").get_json() == {
        "added": [], "removed": [], "changed": ["respond"]}
    body = designer.get("/api/processes/emergency/diff?from=2&to=3").get_json()
    assert (body["added"], body["removed"]) == (["judge_danger"], ["judge_urgency"])


@pytest.mark.parametrize("query, field", [("from=1", "to"), ("from=x&to=2", "from"), ("from=0&to=1", "from")])
def test_diff_and_migration_name_a_bad_query_parameter(designer: ApiClient, query: str, field: str) -> None:
    for url in (f"/api/processes/emergency/diff?{query}", f"/api/processes/emergency/migration?{query}"):
        response = designer.get(url)
        assert response.status_code == 422 and field in response.get_json()["error"]["fields"]


def test_diff_of_an_unknown_version_is_404(designer: ApiClient) -> None:
    assert designer.get("/api/processes/emergency/diff?from=1&to=7").status_code == 404


def test_migration_preview_and_bulk_migration_through_the_api(api, designer: ApiClient, session) -> None:  # noqa: ANN001
    first = _open_emergency(api)
    second = _open_emergency(api)
    _deploy(designer, RENAMED)
    preview = designer.get("/api/processes/emergency/migration?from=1&to=2").get_json()
    assert preview == {"movable": [{"case_id": first["id"], "number": first["number"]},
                                   {"case_id": second["id"], "number": second["number"]}], "blocked": []}
    response = designer.post("/api/processes/emergency/migration",
                             json={"from": 1, "to": 2, "cases": [second["id"], "nope"]})
    assert response.status_code == 200
    body = response.get_json()
    assert body["migrated"] == [{"case_id": second["id"]}]
    assert [f["case_id"] for f in body["failed"]] == ["nope"] and body["failed"][0]["reason"]
    assert api("caseworker").get(f"/api/cases/{second['id']}").get_json()["version"] == 2
    # without `cases`: every movable case
    rest = designer.post("/api/processes/emergency/migration", json={"from": 1, "to": 2}).get_json()
    assert rest == {"migrated": [{"case_id": first["id"]}], "failed": []}
    history = api("caseworker").get(f"/api/cases/{first['id']}").get_json()["history"]
    assert [h["data"] for h in history if h["kind"] == "case_migrated"] == [{"from": 1, "to": 2}]
    # and back
    back = designer.post("/api/processes/emergency/migration", json={"from": 2, "to": 1}).get_json()
    assert sorted(m["case_id"] for m in back["migrated"]) == sorted([first["id"], second["id"]])


@pytest.mark.parametrize("body, field", [({"to": 2}, "from"), ({"from": 1, "to": "two"}, "to"),
                                         ({"from": 1, "to": 2, "cases": "all"}, "cases"),
                                         ({"from": 1, "to": 1}, "to")])
def test_migration_names_a_bad_field(designer: ApiClient, body: dict, field: str) -> None:
    _deploy(designer, RENAMED)
    response = designer.post("/api/processes/emergency/migration", json=body)
    assert response.status_code == 422 and field in response.get_json()["error"]["fields"]


def test_forms_list_read_and_change(designer: ApiClient, session) -> None:  # noqa: ANN001
    listed = {f["key"]: f for f in designer.get("/api/forms").get_json()}
    assert "intake" in listed and listed["intake"]["version"] == 1 and "title" in listed["intake"]
    schema = designer.get("/api/forms/advice").get_json()
    assert schema == json.loads((ROOT / "forms" / "advice.json").read_text(encoding="utf-8"))
    schema["properties"]["note"] = {"type": "string", "title": "備考"}
    response = designer.put("/api/forms/advice", json=schema)
    assert response.status_code == 200 and response.get_json()["version"] == 2
    assert designer.get("/api/forms/advice").get_json() == schema
    created = designer.put("/api/forms/home_visit_note", json={"type": "object", "title": "訪問記録",
                                                               "properties": {"note": {"type": "string"}}})
    assert created.status_code == 200 and created.get_json()["version"] == 1
    assert designer.get("/api/forms/nothing").status_code == 404


@pytest.mark.parametrize("schema, field", [
    ({"type": "object", "properties": {"x": {"type": "strin"}}}, "properties.x.type"),
    ({"type": "array", "properties": {}}, "type"),
    ({"type": "object", "properties": {"d": {"type": "string", "format": "time"}}}, "properties.d.format"),
    ({"type": "object", "properties": {}, "required": ["who"]}, "required.who"),
])
def test_a_bad_form_is_422_naming_the_problem_and_stores_nothing(designer: ApiClient, session, schema: dict,  # noqa: ANN001
                                                                 field: str) -> None:
    response = designer.put("/api/forms/advice", json=schema)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]
    assert session.scalar(select(func.count()).select_from(FormVersion).where(FormVersion.form_key == "advice")) == 1


def test_a_bad_form_key_is_422(designer: ApiClient) -> None:
    response = designer.put("/api/forms/Bad Key!", json={"type": "object", "properties": {}})
    assert response.status_code == 422 and "key" in response.get_json()["error"]["fields"]


def test_a_deploy_uses_the_forms_stored_now(designer: ApiClient, session) -> None:  # noqa: ANN001
    # A diagram naming a form that exists only in the database (made through the API) deploys.
    designer.put("/api/forms/judgement_v2", json={"type": "object", "title": "判断",
                                                  "properties": {"urgency": {"type": "string"}}})
    xml = RENAMED.replace('value="emergency_judgement"', 'value="judgement_v2"')
    assert _deploy(designer, xml)["version"] == 2
    row = session.scalar(select(ProcessDefinition).where(ProcessDefinition.process_key == "emergency",
                                                         ProcessDefinition.version == 2))
    assert "judgement_v2" in row.bundle["forms"]


def test_a_comment_too_long_is_422(designer: ApiClient, session) -> None:  # noqa: ANN001
    response = _post_xml(designer, "/api/processes?comment=" + "x" * 2001, RENAMED)
    assert response.status_code == 422 and "comment" in response.get_json()["error"]["fields"]
    assert _versions(session, "emergency") == 1
