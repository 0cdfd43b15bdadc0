"""The supervisors' pages over the test client: who may open them, the nav link, the stuck list's
filters, paging, sort and CSV, a bad filter answered with 422 naming it, and the heatmap page."""

from __future__ import annotations

import csv
import io

from engine.casework import cases
from engine.models import User


def open_cases(session, env, personas, clock, n: int) -> list[str]:  # noqa: ANN001
    actor = session.get(User, personas.caseworker.id)
    return [cases.start_case(session, env, actor, "multi_agency", {"summary": "相談"}, None, clock.now()).id for _ in range(n)]


def test_staff_are_refused_and_see_no_link(staff) -> None:  # noqa: ANN001
    client = staff("caseworker")
    assert "/supervisor" not in client.get("/").get_data(as_text=True)
    for url in ("/supervisor", "/supervisor/stuck", "/supervisor/stuck.csv", "/supervisor/heatmap",
                "/supervisor/stuck?reason=late"):
        assert client.get(url).status_code == 403, url


def test_dashboard_shows_counts_heatmap_and_workload(staff, session, env, personas, clock) -> None:  # noqa: ANN001
    open_cases(session, env, personas, clock, 3)
    clock.advance(days=4)
    client = staff("supervisor")
    assert 'href="/supervisor"' in client.get("/").get_data(as_text=True)
    page = client.get("/supervisor")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "滞留案件 3 件（理由別 6 件）" in text
    assert 'id="heatmap-data"' in text and 'id="dashboard-data"' in text and "build/supervisor.js" in text
    assert "地域包括支援センター" in text and "1. 相談・調整" in text


def test_stuck_list_filters_pages_and_sorts(staff, session, env, personas, clock, monkeypatch) -> None:  # noqa: ANN001
    from web.ui import reports

    monkeypatch.setattr(reports, "PAGE_SIZE", 2)
    ids = open_cases(session, env, personas, clock, 3)
    clock.advance(days=4)
    client = staff("lead")
    first = client.get("/supervisor/stuck?reason=overdue").get_data(as_text=True)
    assert "3 件中 1〜2 件目（古い順）" in first and "page=2" in first
    second = client.get("/supervisor/stuck?reason=overdue&page=2").get_data(as_text=True)
    assert "3 件中 3〜3 件目" in second
    for case_id in ids:
        assert f"/cases/{case_id}" in first + second
    assert "新しい順" in client.get("/supervisor/stuck?sort=age").get_data(as_text=True)


def test_bad_filter_gets_422_naming_it(staff) -> None:  # noqa: ANN001
    client = staff("supervisor")
    page = client.get("/supervisor/stuck?min_age_days=soon")
    assert page.status_code == 422 and "min_age_days" in page.get_data(as_text=True)
    assert client.get("/supervisor/stuck?age=ancient").status_code == 422
    assert client.get("/supervisor/stuck.csv?reason=late").status_code == 422
    assert client.get("/supervisor/heatmap?from=someday").status_code == 422


def test_csv_download_reads_back_in_japanese(staff, session, env, personas, clock) -> None:  # noqa: ANN001
    open_cases(session, env, personas, clock, 2)
    clock.advance(days=4)
    response = staff("supervisor").get("/supervisor/stuck.csv?reason=unassigned")
    assert response.status_code == 200 and response.get_data().startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert table[0][:3] == ["案件ID", "案件番号", "プロセス"] and len(table) == 3
    assert {row[9] for row in table[1:]} == {"担当者未定"}


def test_heatmap_page_per_version_and_period(staff, session, env, personas, clock) -> None:  # noqa: ANN001
    open_cases(session, env, personas, clock, 1)
    page = staff("supervisor").get("/supervisor/heatmap?process=multi_agency&version=1&from=2026-03-01&to=2026-04-30")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "2026-03-01〜2026-04-30 の集計" in text
    assert "/supervisor/stuck?process=multi_agency&amp;step=intake" in text
