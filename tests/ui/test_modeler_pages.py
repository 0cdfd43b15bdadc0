"""The modeler page (/modeler) and the JSON it uses (/modeler/data): designers and administrators
only, signed in with the page session and its CSRF token; the form preview drawn by the task page's
renderer."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy.orm import Session

from engine.clock import FrozenClock
from engine.security import users
from engine.settings import ROOT
from tests.ui.conftest import PASSWORD, PageClient

SIX_STEPS = (ROOT / "processes" / "multi_agency.bpmn").read_text(encoding="utf-8")


@pytest.fixture
def designer(app, session: Session, clock: FrozenClock, staff) -> PageClient:  # noqa: ANN001
    user = users.add_user(session, "sekkei.mori", ["secretariat"], ["designer"], clock.now(), "森 設計者")
    users.set_password(user, PASSWORD)
    session.commit()
    client = PageClient(app.test_client())
    assert client.login("sekkei.mori").status_code == 302
    client.get("/modeler")
    return client


def send(client: PageClient, method: str, url: str, body: object) -> object:
    return client.client.open(url, method=method, json=body, headers={"X-CSRF-Token": client.token})


def island(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="modeler-data">(.*?)</script>', html, re.S)
    assert m
    return json.loads(m.group(1))


def test_the_modeler_page_lists_processes_forms_and_lanes(designer: PageClient) -> None:
    r = designer.get("/modeler")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert '<meta charset="utf-8">' in html and "プロセス設計" in html
    assert "FEEL ではなく Python の式" in html
    data = island(html)
    assert {p["key"] for p in data["processes"]} >= {"multi_agency", "emergency"}
    assert "intake" in data["forms"]
    assert {"lane": "事務局", "group": "secretariat", "group_name": "事務局"} in data["lanes"] or any(
        lane["lane"] == "事務局" and lane["group"] == "secretariat" for lane in data["lanes"])
    assert "intake_criteria" in data["decisions"]
    assert data["messages"]["md_timer_every"] == "{text}ごと"


def test_others_get_the_forbidden_page(staff) -> None:  # noqa: ANN001
    client = staff("secretariat")
    r = client.get("/modeler")
    assert r.status_code == 403 and "text/html" in r.content_type
    r = client.client.get("/modeler/data/processes/multi_agency/versions/1/bpmn")
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden"
    assert staff().get("/modeler").status_code == 302  # not signed in: to the sign-in page


def test_a_version_downloads_as_bpmn(designer: PageClient) -> None:
    r = designer.get("/modeler/data/processes/multi_agency/versions/1/bpmn?download=1")
    assert r.status_code == 200 and r.mimetype == "application/xml"
    assert "attachment" in r.headers["Content-Disposition"]
    assert r.get_data(as_text=True) == SIX_STEPS
    r = designer.get("/modeler/data/processes/multi_agency/versions/1/dmn/intake_criteria.dmn")
    assert r.status_code == 200 and "intake_criteria" in r.get_data(as_text=True)
    assert designer.get("/modeler/data/processes/multi_agency/versions/9/bpmn").status_code == 404


def test_writes_without_the_csrf_token_are_refused(designer: PageClient) -> None:
    r = designer.client.put("/modeler/data/processes/multi_agency/draft", json={"bpmn": SIX_STEPS})
    assert r.status_code == 400


def test_draft_validate_test_run_and_deploy_from_the_page(designer: PageClient) -> None:
    changed = SIX_STEPS.replace('name="dueIn" value="P14D"', 'name="dueIn" value="P10D"', 1)
    assert send(designer, "PUT", "/modeler/data/processes/multi_agency/draft",
                {"bpmn": changed, "base_version": 1}).status_code == 200
    assert designer.get("/modeler/data/processes/multi_agency/draft").get_json()["bpmn"] == changed
    r = send(designer, "POST", "/modeler/data/validate", {"bpmn": changed})
    assert r.get_json() == {"errors": [], "warnings": []}
    r = send(designer, "POST", "/modeler/data/test-run", {"bpmn": changed, "answers": {}})
    assert r.get_json()["waiting"] == [{"element": "intake", "kind": "task"}]
    r = send(designer, "POST", "/modeler/data/deploy", {"bpmn": changed, "opened": None})
    assert r.status_code == 409 and "process_key" in r.get_json()["error"]["fields"]
    r = send(designer, "POST", "/modeler/data/deploy", {"bpmn": changed, "opened": "multi_agency"})
    assert r.get_json() == {"process_key": "multi_agency", "version": 2, "created": True}
    assert designer.get("/modeler/data/processes/multi_agency/draft").status_code == 404


def test_the_form_preview_is_the_task_pages_form(designer: PageClient) -> None:
    schema = {"type": "object", "required": ["summary"], "properties": {
        "summary": {"type": "string", "title": "相談の概要", "maxLength": 2000, "x-multiline": True},
        "target": {"type": "string", "title": "対象", "enum": ["a", "b"]}}}
    r = send(designer, "POST", "/modeler/data/forms/preview", {"schema": schema})
    assert r.status_code == 200
    html = r.get_json()["html"]
    assert "相談の概要" in html and 'aria-required="true"' in html and 'type="radio" value="b"' in html
    r = send(designer, "POST", "/modeler/data/forms/preview", {"schema": {"type": 5}})
    assert r.status_code == 422 and list(r.get_json()["error"]["fields"]) == ["schema.type"]
    r = send(designer, "POST", "/modeler/data/forms/preview", ["x"])
    assert r.status_code == 422


def test_a_form_saved_from_the_page_is_the_next_version_of_it(designer: PageClient) -> None:
    schema = {"type": "object", "title": "確認", "properties": {"checked": {"type": "boolean", "title": "確認した"}}}
    r = send(designer, "PUT", "/modeler/data/forms/follow_up_check", {"schema": schema})
    assert r.get_json() == {"key": "follow_up_check", "version": 1, "created": True}
    assert send(designer, "PUT", "/modeler/data/forms/follow_up_check", {"schema": schema}).get_json()["created"] is False
    r = send(designer, "PUT", "/modeler/data/forms/follow_up_check", {"schema": {"type": "object"}})
    assert r.status_code == 422 and "properties" in r.get_json()["error"]["fields"]
    data = island(designer.get("/modeler").get_data(as_text=True))
    assert data["forms"]["follow_up_check"]["schema"] == schema


def test_migration_preview_and_migrate_from_the_page(designer: PageClient, api) -> None:  # noqa: ANN001
    case = api("caseworker").post("/api/cases", json={"process": "multi_agency", "data": {"summary": "x"}}).get_json()
    changed = SIX_STEPS.replace("1. 相談・調整", "1. 相談")
    assert send(designer, "POST", "/modeler/data/deploy", {"bpmn": changed, "opened": "multi_agency",
                                                          "comment": "名前の変更"}).status_code == 200
    r = designer.get("/modeler/data/processes/multi_agency/migration?from=1&to=2")
    assert r.get_json()["movable"] == [{"case_id": case["id"], "number": case["number"]}]
    assert designer.get("/modeler/data/processes/multi_agency/migration?from=x&to=2").status_code == 422
    r = send(designer, "POST", "/modeler/data/processes/multi_agency/migration", {"from": 1, "to": 2})
    assert r.get_json() == {"migrated": [{"case_id": case["id"]}], "failed": []}
    listed = {p["key"]: p for p in island(designer.get("/modeler").get_data(as_text=True))["processes"]}
    assert listed["multi_agency"]["versions"][0]["comment"] == "名前の変更"


def test_a_malicious_script_is_stopped_or_refused_from_the_page_with_its_element(designer: PageClient,
                                                                                tmp_path) -> None:  # noqa: ANN001
    from tests.engine.support import ADVICE, diagram

    loop = (diagram(tmp_path, script="i = 0\nwhile i >= 0:\n    i = i + 1") / "probe.bpmn").read_text()
    r = send(designer, "POST", "/modeler/data/test-run", {"bpmn": loop, "answers": {"work": ADVICE}})
    assert r.status_code == 200 and r.get_json()["error"]["element"] == "middle"
    escape = (diagram(tmp_path, script="x = ().__class__.__bases__") / "probe.bpmn").read_text()
    for url in ("/modeler/data/test-run", "/modeler/data/deploy"):
        r = send(designer, "POST", url, {"bpmn": escape, "answers": {"work": ADVICE}})
        assert r.status_code == 422 and "middle" in r.get_json()["error"]["fields"], r.get_json()
    assert "probe" not in {p["key"] for p in island(designer.get("/modeler").get_data(as_text=True))["processes"]}
