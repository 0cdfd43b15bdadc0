"""The case page shows the newest 50 events of an old case's history, with a link to the older
ones, and marks the diagram's steps done from the whole history still."""

from __future__ import annotations

import re

from engine.casework import cases
from engine.models import Case
from tests.api.test_history_pages import aged_case


def _event_ids(page: str) -> list[str]:
    return re.findall(r'<li class="timeline__item', page)


def test_an_old_case_page_shows_50_events_and_links_to_older_ones(
        staff, session, env, personas, clock, session_factory) -> None:  # noqa: ANN001
    case_id = aged_case(session, env, personas, clock, session_factory, rounds=30)
    total = len(cases.case_history(session, session.get(Case, case_id)))
    client = staff("secretariat")
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert len(_event_ids(page)) == 50
    older = re.search(r'href="(/cases/[^"]+\?before=\d+)#timeline-title" rel="next"', page)
    assert older and "以前の記録" in page
    shown = 50
    while older:
        r = client.get(older.group(1))
        assert r.status_code == 200
        text = r.get_data(as_text=True)
        shown += len(_event_ids(text))
        assert "最新の記録" in text
        older = re.search(r'href="(/cases/[^"]+\?before=\d+)#timeline-title" rel="next"', text)
    assert shown == total
    marks = client.get(f"/cases/{case_id}/diagram").json
    assert {"intake", "assessment", "plan", "meeting"} <= set(marks["done"])
    assert marks["current"]  # it waits for its next monitoring


def test_a_young_case_page_has_no_history_links(staff, api) -> None:  # noqa: ANN001
    case = api("caseworker").post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    page = staff("caseworker").get(f"/cases/{case['id']}").get_data(as_text=True)
    assert "以前の記録" not in page and "最新の記録" not in page


def test_a_bad_history_page_is_refused_not_an_error(staff, api) -> None:  # noqa: ANN001
    case = api("caseworker").post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    client = staff("caseworker")
    for bad in ("abc", "0", "-1", "99999999999999"):
        r = client.get(f"/cases/{case['id']}?before={bad}")
        assert 400 <= r.status_code < 500, (bad, r.status_code)
