"""The outreach process (アウトリーチ等継続支援) through the JSON API: the tax section's
arrears referral, a missed contact retried after the case's interval, the home visit
and the hand-over to a linked multi-agency case; who may see which of the two."""

from __future__ import annotations

import pytest

from engine.casework.timers import fire_due
from engine.security import users
from tests.api.test_api import complete, only_task
from tests.conftest import ApiClient

REFERRAL = {"source": "tax", "household_ref": "H-2026-0412", "amount_yen": 186000, "months_in_arrears": 7}


@pytest.fixture
def staff(app, session, clock) -> dict[str, ApiClient]:  # noqa: ANN001
    """API clients of the tax section (納税課) and an outreach caseworker of 地域共生課."""
    client = app.test_client()
    now = clock.now()
    tax = users.add_user(session, "nozei.kobayashi", ["nozei"], ["staff"], now, "小林 徴収")
    worker = users.add_user(session, "kyosei.mori", ["chiiki-kyosei"], ["staff"], now, "森 相談員")
    tokens = {"tax": users.issue_token(session, tax, now), "worker": users.issue_token(session, worker, now)}
    session.commit()
    return {k: ApiClient(client, v) for k, v in tokens.items()}


def test_outreach_referral_walks_to_a_linked_multi_agency_case(api, staff, clock, session_factory, env) -> None:  # noqa: ANN001
    tax, worker, sup, outsider = staff["tax"], staff["worker"], api("supervisor"), api("outsider")
    r = tax.post("/api/cases", json={"process": "outreach", "data": REFERRAL})
    assert r.status_code == 201, r.json
    case = r.json
    assert case["number"] == "OR-2026-00001" and case["referring_group"] == "nozei"
    assign = only_task(sup, case["id"], "assign")
    assert (assign["group"], assign["form"]) == ("chiiki-kyosei", "outreach_assign")
    prefill = sup.get(f"/api/tasks/{assign['id']}").json["data"]
    assert prefill == {"summary": "市税の滞納 7か月・186,000円（世帯番号 H-2026-0412）", "attempt_interval": "P7D", "max_attempts": 3}
    after = complete(sup, case["id"], "assign", prefill)
    assert after["summary"] == prefill["summary"]
    attempt = only_task(sup, case["id"], "attempt")
    r = sup.post(f"/api/tasks/{attempt['id']}/assign", json={"assignee": "kyosei.mori"})
    assert r.status_code == 200 and r.json["assignee"] == "kyosei.mori"
    assert attempt["id"] in [t["id"] for t in worker.get("/api/tasks").json]

    after = complete(worker, case["id"], "attempt", {"method": "phone", "result": "not_reached"})
    assert after["open_tasks"] == []
    assert [t["step"] for t in after["timers"]] == ["wait_next"]
    clock.advance(days=7, minutes=1)
    assert fire_due(session_factory, env, clock.now()) == 1
    complete(worker, case["id"], "attempt", {"method": "joint_visit", "joint_group": "nozei", "result": "reached"})
    complete(worker, case["id"], "home_visit", {"visited_on": "2026-04-08", "companions": ["nozei"],
                                                "situation": "失職後に滞納が続いている", "consent": "given"})
    final = complete(worker, case["id"], "decide", {"next": "connect", "reason": "家計と就労"})
    assert final["status"] == "completed"
    assert [(c["relation"], c["process"]) for c in final["linked_cases"]] == [("handed_over_to", "multi_agency")]
    new_id = final["linked_cases"][0]["id"]
    new = worker.get(f"/api/cases/{new_id}").json
    assert new["number"] == "MA-2026-00001" and new["referring_group"] == "chiiki-kyosei"
    assert [(c["relation"], c["id"]) for c in new["linked_cases"]] == [("handed_over_from", case["id"])]
    started = next(h for h in new["history"] if h["kind"] == "case_started")
    assert started["data"]["outreach"]["household_ref"] == "H-2026-0412"
    assert only_task(worker, new_id, "intake")["group"] == "chiiki-kyosei"

    # The tax section sees the referral it made, not the six-step case; an outsider neither.
    assert tax.get(f"/api/cases/{case['id']}").status_code == 200
    assert tax.get(f"/api/cases/{new_id}").status_code == 404
    for case_id in (case["id"], new_id):
        assert outsider.get(f"/api/cases/{case_id}").status_code == 404
    assert new_id not in [c["id"] for c in outsider.get("/api/cases").json]


def test_bad_referral_is_a_422_naming_the_fields(staff) -> None:  # noqa: ANN001
    r = staff["tax"].post("/api/cases", json={"process": "outreach",
                                              "data": {**REFERRAL, "source": "gas", "name": "山田 太郎"}})
    assert r.status_code == 422
    error = r.json["error"]
    assert error["code"] == "invalid" and set(error["fields"]) == {"data.source", "data.name"}
    assert staff["tax"].get("/api/cases").json == []
