"""The designers' API: drafts (GET/PUT/DELETE /api/processes/<key>/draft) and test runs
(POST /api/processes/test-run) over HTTP, for designers and administrators only."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.clock import FrozenClock
from engine.models import Case, ProcessDraft
from engine.security import users
from engine.settings import ROOT
from tests.conftest import ApiClient
from tests.engine.support import ADVICE, diagram, intake

SIX_STEPS = (ROOT / "processes" / "multi_agency.bpmn").read_text(encoding="utf-8")


@pytest.fixture
def designer(app, session: Session, clock: FrozenClock) -> ApiClient:  # noqa: ANN001
    user = users.add_user(session, "sekkei.mori", ["secretariat"], ["designer"], clock.now(), "森 設計者")
    token = users.issue_token(session, user, clock.now())
    session.commit()
    return ApiClient(app.test_client(), token)


def test_a_designer_saves_reads_and_deletes_a_draft(designer: ApiClient) -> None:
    r = designer.put("/api/processes/multi_agency/draft", json={"bpmn": SIX_STEPS, "base_version": 1})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["base_version"] == 1
    r = designer.get("/api/processes/multi_agency/draft")
    assert (r.status_code, r.get_json()["bpmn"], r.get_json()["dmn"]) == (200, SIX_STEPS, {})
    assert designer.delete("/api/processes/multi_agency/draft").status_code == 204
    r = designer.get("/api/processes/multi_agency/draft")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(("body", "field"), [
    ({}, "bpmn"),
    ({"bpmn": 5}, "bpmn"),
    ({"bpmn": "<not xml"}, "bpmn"),
    ({"bpmn": SIX_STEPS, "dmn": {"x.txt": "<a/>"}}, "dmn.x.txt"),
    ({"bpmn": SIX_STEPS, "base_version": 0}, "base_version"),
])
def test_a_bad_draft_is_refused_naming_the_field(designer: ApiClient, session: Session, body: dict,
                                                 field: str) -> None:
    r = designer.put("/api/processes/multi_agency/draft", json=body)
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["error"]["fields"]
    assert session.scalar(select(func.count()).select_from(ProcessDraft)) == 0


def test_drafts_and_test_runs_are_forbidden_to_others(api) -> None:  # noqa: ANN001
    caseworker = api("secretariat")
    assert caseworker.put("/api/processes/multi_agency/draft", json={"bpmn": SIX_STEPS}).status_code == 403
    assert caseworker.get("/api/processes/multi_agency/draft").status_code == 403
    r = caseworker.post("/api/processes/test-run", json={"bpmn": SIX_STEPS})
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden"
    assert api("admin").post("/api/processes/test-run", json={"bpmn": SIX_STEPS}).status_code == 200


def test_a_test_run_returns_the_path_and_where_it_stopped(designer: ApiClient, session: Session) -> None:
    r = designer.post("/api/processes/test-run", json={"bpmn": SIX_STEPS, "answers": {"intake": intake()}})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "waiting"
    assert body["path"][:3] == ["start", "intake", "screening"]
    assert body["waiting"] == [{"element": "assessment", "kind": "task"}]
    assert body["data"]["decision"] == "eligible"
    assert session.scalar(select(func.count()).select_from(Case)) == 0


def test_a_runaway_script_in_a_test_run_names_its_element(designer: ApiClient, tmp_path: Path) -> None:
    bpmn = (diagram(tmp_path, script="x = 9 ** 9 ** 9 ** 9") / "probe.bpmn").read_text()
    r = designer.post("/api/processes/test-run", json={"bpmn": bpmn, "answers": {"work": ADVICE}})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "error" and body["error"]["element"] == "middle"


def test_a_test_run_of_an_unsafe_diagram_is_refused_with_its_element(designer: ApiClient, tmp_path: Path) -> None:
    bpmn = (diagram(tmp_path, condition="__import__('os').system('true')") / "probe.bpmn").read_text()
    r = designer.post("/api/processes/test-run", json={"bpmn": bpmn, "answers": {"work": ADVICE}})
    assert r.status_code == 422, r.get_json()
    error = r.get_json()["error"]
    assert error["code"] == "invalid_definition" and "choice" in error["fields"]


@pytest.mark.parametrize(("body", "field"), [
    ({"bpmn": SIX_STEPS, "answers": {"intake": 1}}, "answers.intake"),
    ({"bpmn": SIX_STEPS, "answers": []}, "answers"),
    ({"bpmn": "<x"}, "bpmn"),
    ({"answers": {}}, "bpmn"),
])
def test_a_bad_test_run_is_refused_naming_the_field(designer: ApiClient, body: dict, field: str) -> None:
    r = designer.post("/api/processes/test-run", json=body)
    assert r.status_code == 422, r.get_json()
    assert any(k.startswith(field) for k in r.get_json()["error"]["fields"]), r.get_json()
