"""The case page of a case moved to another process version: its history says so."""

from __future__ import annotations

from engine.settings import ROOT
from engine.workflow import specs, versions


def test_the_case_page_shows_a_migration_in_the_history(app, api, staff, session, env, clock) -> None:  # noqa: ANN001
    case = api("caseworker").post("/api/cases", json={"process": "emergency", "data": {"summary": "相談"}}).get_json()
    sources = specs.read_sources(ROOT / "processes", ROOT / "forms")
    sources.bpmn = {"emergency.bpmn": sources.bpmn["emergency.bpmn"].replace("2. 対応もしくは連携を要請",
                                                                             "2. 対応・連携の要請")}
    specs.deploy(session, sources, env.org, clock.now())
    assert versions.migrate(session, env, None, "emergency", 1, 2, None, clock.now()).migrated == [
        {"case_id": case["id"]}]
    page = staff("caseworker").get(f"/cases/{case['id']}")
    assert page.status_code == 200
    assert "プロセスの版を移行" in page.get_data(as_text=True)
