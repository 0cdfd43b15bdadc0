"""The reports' HTTP contract: shapes, 403 for staff, 422 naming the parameter, the CSV as
Excel reads it, and rows only of cases the caller may see."""

from __future__ import annotations

import csv
import io

from engine.reports import stuck
from engine.security import users
from tests.conftest import ApiClient, Personas

ROW_KEYS = {"case_id", "case_number", "process", "version", "step", "step_name", "group", "assignee", "reason", "since",
            "age_days", "detail"}


def open_cases(api, n: int = 2) -> list[dict]:  # noqa: ANN001
    return [api("caseworker").post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).get_json()
            for _ in range(n)]


def test_stuck_contract(api, clock) -> None:  # noqa: ANN001
    made = open_cases(api)
    clock.advance(days=4)
    body = api("supervisor").get("/api/reports/stuck").get_json()
    assert body["total"] == 4 and len(body["items"]) == 4
    assert all(set(item) == ROW_KEYS for item in body["items"])
    first = body["items"][0]
    assert first["reason"] in ("overdue", "unassigned") and first["version"] == 1 and first["step"] == "intake"
    assert {i["case_id"] for i in body["items"]} == {c["id"] for c in made}
    page = api("supervisor").get("/api/reports/stuck?reason=overdue&limit=1&offset=1&sort=age").get_json()
    assert page["total"] == 2 and len(page["items"]) == 1
    assert api("supervisor").get("/api/reports/stuck?age=lt7&min_age_days=0&process=multi_agency&step=intake"
                                 "&group=hokatsu-center").get_json()["total"] == 4


def test_staff_get_403_on_every_report(api) -> None:  # noqa: ANN001
    for url in ("/api/reports/stuck", "/api/reports/stuck.csv", "/api/reports/heatmap?process=multi_agency",
                "/api/reports/workload"):
        for who in ("caseworker", "secretariat"):
            response = api(who).get(url)
            assert response.status_code == 403, url
            assert response.get_json()["error"]["code"] == "forbidden"


def test_bad_parameters_get_422_naming_them(api) -> None:  # noqa: ANN001
    for url, field in [("/api/reports/stuck?reason=late", "reason"), ("/api/reports/stuck?age=old", "age"),
                       ("/api/reports/stuck?limit=0", "limit"), ("/api/reports/stuck?limit=x", "limit"),
                       ("/api/reports/stuck?offset=-1", "offset"), ("/api/reports/stuck?sort=since", "sort"),
                       ("/api/reports/stuck?min_age_days=-3", "min_age_days"), ("/api/reports/stuck.csv?age=1", "age"),
                       ("/api/reports/heatmap", "process"), ("/api/reports/heatmap?process=nope", "process"),
                       ("/api/reports/heatmap?process=multi_agency&version=7", "version"),
                       ("/api/reports/heatmap?process=multi_agency&version=x", "version"),
                       ("/api/reports/heatmap?process=multi_agency&from=soon", "from"),
                       ("/api/reports/heatmap?process=multi_agency&to=2026-02-30", "to")]:
        response = api("supervisor").get(url)
        assert response.status_code == 422, url
        assert field in response.get_json()["error"]["fields"], url


def test_csv_reads_back_with_japanese_intact(api, clock) -> None:  # noqa: ANN001
    open_cases(api, 3)
    clock.advance(days=4)
    response = api("supervisor").get("/api/reports/stuck.csv?reason=overdue")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0] == stuck.CSV_HEADERS == ["案件ID", "案件番号", "プロセス", "版", "工程", "工程名", "担当機関", "担当者",
                                             "理由", "理由（表示）", "発生日時", "経過日数", "詳細"]
    assert len(table) == 4
    assert {row[5] for row in table[1:]} == {"1. 相談・調整"} and {row[6] for row in table[1:]} == {"地域包括支援センター"}
    assert {row[9] for row in table[1:]} == {"期限超過"}


def test_heatmap_and_workload_contract(api, clock) -> None:  # noqa: ANN001
    open_cases(api)
    clock.advance(days=4)
    body = api("supervisor").get("/api/reports/heatmap?process=multi_agency&from=2026-03-01&to=2026-04-30").get_json()
    intake = next(s for s in body["steps"] if s["step"] == "intake")
    assert intake == {"step": "intake", "name": "1. 相談・調整", "open": 2, "stuck": 2, "median_hours": None,
                      "p90_hours": None, "entered": 2}
    assert body["versions"] == [1] and body["version"] is None
    load = api("lead").get("/api/reports/workload").get_json()
    (group,) = [g for g in load["groups"] if g["group"] == "hokatsu-center"]
    assert group == {"group": "hokatsu-center", "name": "地域包括支援センター", "open": 2, "overdue": 2, "claimed": 0,
                     "completed_this_month": 0}
    assert load["users"] == []


def test_a_supervisor_outside_the_case_wide_groups_sees_only_their_cases(app, api, session, clock,  # noqa: ANN001
                                                                         personas: Personas) -> None:
    open_cases(api, 1)
    api("outsider").post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}})
    clock.advance(days=4)
    boss = users.add_user(session, "hokatsu.mori", ["hokatsu-center"], ["staff", "supervisor"], clock.now(), "森 係長")
    client = ApiClient(app.test_client(), users.issue_token(session, boss, clock.now()))
    session.commit()
    body = client.get("/api/reports/stuck").get_json()
    assert body["total"] == 2 and {i["group"] for i in body["items"]} == {"hokatsu-center"}
    assert api("supervisor").get("/api/reports/stuck").get_json()["total"] == 4
    csv_rows = client.get("/api/reports/stuck.csv").get_data().decode("utf-8-sig").strip().splitlines()
    assert len(csv_rows) == 3
    heat = client.get("/api/reports/heatmap?process=multi_agency").get_json()
    assert next(s for s in heat["steps"] if s["step"] == "intake")["open"] == 1
    assert [g["group"] for g in client.get("/api/reports/workload").get_json()["groups"]] == ["hokatsu-center"]


def test_a_page_past_the_end_is_empty_not_an_error(api, clock) -> None:  # noqa: ANN001
    open_cases(api, 1)
    clock.advance(days=4)
    for sort in ("-age", "age"):
        body = api("supervisor").get(f"/api/reports/stuck?offset=2147483647&limit=500&sort={sort}").get_json()
        assert body == {"items": [], "total": 2}
