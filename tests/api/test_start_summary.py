"""A case a person opens says what it is about: `POST /api/cases` refuses multi_agency and
emergency cases whose summary is sent empty (white space is none) and opens nothing; one sent
without a summary opens as the API always allowed (intake asks for it); processes without a
summary at their start (outreach, a designer's) still start without one."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.models import AuditRecord, Case, CaseEvent, HumanTask
from engine.settings import ROOT
from engine.workflow import specs
from tests.engine.support import diagram


def counts(session) -> tuple[int, ...]:  # noqa: ANN001
    session.expire_all()
    return tuple(session.scalar(select(func.count()).select_from(t)) for t in (Case, CaseEvent, AuditRecord, HumanTask))


@pytest.mark.parametrize("process", ["multi_agency", "emergency"])
@pytest.mark.parametrize("data", [{"summary": ""}, {"summary": "  \n\u3000 "}, {"summary": 42}, {"summary": None}])
def test_a_case_with_an_empty_summary_is_refused_naming_the_field(api, session, process: str, data) -> None:  # noqa: ANN001
    before = counts(session)
    body = {"process": process} if data is None else {"process": process, "data": data}
    r = api("caseworker").post("/api/cases", json=body)
    assert r.status_code == 422, r.json
    assert r.json["error"]["code"] == "invalid"
    assert r.json["error"]["fields"] == {"data.summary": "入力してください / This field is required"}
    assert r.json["error"]["message"].startswith("概要を入力してください")
    assert counts(session) == before


@pytest.mark.parametrize("process", ["multi_agency", "emergency"])
@pytest.mark.parametrize("data", [None, {}])
def test_a_case_started_without_the_summary_field_opens_as_before(api, process: str, data) -> None:  # noqa: ANN001
    body = {"process": process} if data is None else {"process": process, "data": data}
    r = api("caseworker").post("/api/cases", json=body)
    assert r.status_code == 201, r.json
    assert r.json["summary"] == ""


@pytest.mark.parametrize("process", ["multi_agency", "emergency"])
def test_a_case_with_a_summary_opens_with_it(api, process: str) -> None:  # noqa: ANN001
    r = api("caseworker").post("/api/cases", json={"process": process, "data": {"summary": " 独居の高齢者 "}})
    assert r.status_code == 201, r.json
    assert r.json["summary"] == " 独居の高齢者 "


def test_outreach_starts_from_its_referral_without_a_summary(api) -> None:  # noqa: ANN001
    r = api("caseworker").post("/api/cases", json={"process": "outreach", "data": {
        "source": "tax", "household_ref": "H-0001", "amount_yen": 12000, "months_in_arrears": 3}})
    assert r.status_code == 201, r.json


def test_a_designers_process_without_a_start_form_needs_no_summary(api, session, env, clock,  # noqa: ANN001
                                                                    tmp_path: Path) -> None:
    specs.deploy(session, specs.read_sources(diagram(tmp_path), ROOT / "forms"), env.org, clock.now())
    r = api("secretariat").post("/api/cases", json={"process": "probe", "group": "chiiki-kyosei", "data": {}})
    assert r.status_code == 201, r.json
    assert r.json["summary"] == ""
