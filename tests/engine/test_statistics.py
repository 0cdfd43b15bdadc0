"""The statistics report (engine/reports/statistics.py) against counts computed in plain
Python over a generated data set; the fiscal year's edges (31 March and 1 April, in the
city's time); who may read it (403 for staff without the role) and that it carries figures
only, in the JSON and in the CSV."""

from __future__ import annotations

import statistics as pystats
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from bench.statistics import generate
from engine.models import Consultation
from engine.reports.statistics import SIX_STEPS, compute

JST = timezone(timedelta(hours=9))
FY = 2024
FIRST, LAST = date(FY, 4, 1), date(FY + 1, 3, 31)


def in_fy(t: datetime | None) -> bool:
    return t is not None and FIRST <= t.astimezone(JST).date() <= LAST


@pytest.fixture
def data(session_factory):  # noqa: ANN001, ANN201
    engine = session_factory.kw["bind"]
    with engine.begin() as conn:
        return generate(conn, cases=1500, consultations=6000, seed=7)


def test_figures_match_counts_computed_from_the_generated_rows(session, data) -> None:  # noqa: ANN001
    report = compute(session, FIRST, LAST)

    consultations = [c for c in data.consultations if FIRST <= c["received_on"] <= LAST]
    c = report["consultations"]
    assert c["total"] == len(consultations) > 0
    assert c["by_content"] == dict(sorted(Counter(x["content"] for x in consultations).items()))
    assert c["by_response"] == dict(sorted(Counter(x["response"] for x in consultations).items()))
    assert c["by_window"] == dict(sorted(Counter(x["group_id"] for x in consultations).items()))
    assert c["by_channel"] == dict(sorted(Counter(x["channel"] for x in consultations).items()))
    per_month = Counter(x["received_on"].strftime("%Y-%m") for x in consultations)
    assert [(m["month"], m["total"]) for m in c["by_month"]] == \
           [(f"{y}-{m:02d}", per_month[f"{y}-{m:02d}"]) for y, m in [(FY, m) for m in range(4, 13)] +
            [(FY + 1, m) for m in range(1, 4)]]

    ma = [x for x in data.cases if x["process_key"] == "multi_agency"]
    k = report["cases"]
    assert k["opened"] == sum(in_fy(x["created_at"]) for x in ma)
    decided = Counter(x["decision_result"] for x in ma if in_fy(x["decided_at"]))
    assert k["by_decision"] == {d: decided.get(d, 0) for d in ("eligible", "not_eligible", "consult_only")}
    assert k["by_rule"] == dict(sorted(Counter(x["decision_rule"] for x in ma if in_fy(x["decided_at"])).items()))
    assert k["closures"] == dict(sorted(Counter(x["closure_reason"] for x in ma if in_fy(x["completed_at"])).items()))
    for got in k["steps"]:
        tasks = [t for t in data.tasks if t["step"] == got["step"] and in_fy(t["created_at"])]
        days = [(t["completed_at"] - t["created_at"]).total_seconds() / 86400 for t in tasks if t["completed_at"]]
        assert (got["entered"], got["cases"], got["completed"]) == \
               (len(tasks), len({t["case_id"] for t in tasks}), len(days)), got["step"]
        assert got["mean_days"] == pytest.approx(round(sum(days) / len(days), 1), abs=0.051)
        assert got["median_days"] == round(pystats.median(round(d * 10) for d in days) / 10, 1), got["step"]
    assert [s["step"] for s in k["steps"]] == list(SIX_STEPS)

    meetings = [t for t in data.tasks if t["step"] == "meeting" and t["completed_at"] and in_fy(t["completed_at"])]
    assert report["meetings"]["support_meetings"] == len(meetings)
    assert report["meetings"]["reviews"]["plan"] == dict(sorted(
        Counter(r["result"] for r in data.reviews if in_fy(r["recorded_at"])).items()))

    linked = {x["from_case_id"] for x in data.links}
    for process, key, section in (("emergency", "opened", "emergency"), ("outreach", "referrals", "outreach")):
        rows = [x for x in data.cases if x["process_key"] == process and in_fy(x["created_at"])]
        assert report[section][key] == len(rows)
        assert report[section]["to_six_step_flow"] == sum(x["id"] in linked for x in rows)

    kinds = {p["id"]: p["kind"] for p in data.places}
    started = [p for p in data.placements if in_fy(p["started_at"])]
    ended = Counter(p["status"] for p in data.placements if in_fy(p["ended_at"]))
    part = report["participation"]
    assert part["placements"] == len(started)
    assert part["placements_by_kind"] == dict(sorted(Counter(kinds[p["place_id"]] for p in started).items()))
    assert (part["settled"], part["rematched"], part["ended"]) == (ended["settled"], ended["rematched"], ended["ended"])

    gaps = [g for g in data.gaps if in_fy(g["recorded_at"])]
    assert report["resource_gaps"]["total"] == len(gaps)
    assert report["resource_gaps"]["by_kind"] == dict(sorted(Counter(g["kind"] for g in gaps).items()))


def test_fiscal_year_edges_are_31_march_and_1_april_in_city_time(api, session, clock) -> None:  # noqa: ANN001
    ref = api("caseworker")
    clock.set(datetime(2026, 4, 2, 3, 0, tzinfo=UTC))
    for day in ("2025-04-01", "2026-03-31", "2026-04-01"):
        assert ref.post("/api/consultations", json={"received_on": day, "content": "other", "response": "information"}
                        ).status_code == 201
    # Cases opened a second either side of midnight, 1 April, in Japan (15:00 UTC the day before).
    for at in (datetime(2026, 3, 31, 14, 59, 59, tzinfo=UTC), datetime(2026, 3, 31, 15, 0, 0, tzinfo=UTC)):
        clock.set(at)
        assert ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "x"}}).status_code == 201
    sup = api("supervisor")
    fy2025 = sup.get("/api/reports/statistics?fiscal_year=2025").json
    fy2026 = sup.get("/api/reports/statistics?fiscal_year=2026").json
    assert fy2025["period"] == {"from": "2025-04-01", "to": "2026-03-31"}
    assert (fy2025["consultations"]["total"], fy2026["consultations"]["total"]) == (2, 1)
    assert (fy2025["cases"]["opened"], fy2026["cases"]["opened"]) == (1, 1)
    assert fy2025["consultations"]["by_month"][-1] == {"month": "2026-03", "total": 1, "by_content": {"other": 1}}
    same = sup.get("/api/reports/statistics?from=2026-03-31&to=2026-04-01").json
    assert (same["consultations"]["total"], same["cases"]["opened"]) == (2, 2)


@pytest.mark.parametrize("who", ["supervisor", "secretariat", "lead", "admin"])
def test_the_roles_read_figures_only(api, who) -> None:  # noqa: ANN001
    ref = api("caseworker")
    ref.post("/api/consultations", json={"received_on": "2026-03-31", "content": "hardship", "response": "information",
                                         "person": {"name": "山田 花子"}, "consent": "given", "note": "家賃の滞納"})
    ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "高齢の母と無職の息子"}})
    r = api(who).get("/api/reports/statistics?fiscal_year=2025")
    assert r.status_code == 200 and r.json["consultations"]["by_content"] == {"hardship": 1}
    csv = api(who).get("/api/reports/statistics.csv?fiscal_year=2025")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert csv.data.startswith("\ufeff".encode()) and "区分,項目,コード,値" in csv.data.decode("utf-8-sig")
    for text in (r.get_data(as_text=True), csv.data.decode("utf-8-sig")):
        assert "山田" not in text and "家賃" not in text and "高齢の母" not in text


@pytest.mark.parametrize("who", ["caseworker", "outsider", "elder_care"])
def test_staff_without_the_role_get_403(api, who) -> None:  # noqa: ANN001
    for url in ("/api/reports/statistics", "/api/reports/statistics.csv"):
        r = api(who).get(url)
        assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"


@pytest.mark.parametrize(("query", "field"), [
    ("fiscal_year=1999", "fiscal_year"), ("fiscal_year=abc", "fiscal_year"), ("from=2026-04-01", "to"),
    ("from=2026-04-01&to=2026-03-01", "to"), ("from=2026-13-01&to=2026-12-31", "from"),
    ("fiscal_year=2025&from=2025-04-01&to=2025-05-01", "fiscal_year"),
])
def test_bad_periods_are_named(api, query, field) -> None:  # noqa: ANN001
    r = api("supervisor").get(f"/api/reports/statistics?{query}")
    assert r.status_code == 422 and field in r.json["error"]["fields"], r.json


def test_no_period_is_the_current_fiscal_year(api, session) -> None:  # noqa: ANN001
    assert api("supervisor").get("/api/reports/statistics").json["period"] == {"from": "2026-04-01", "to": "2027-03-31"}
    assert session.query(Consultation).count() == 0
