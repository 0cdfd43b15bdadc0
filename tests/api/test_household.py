"""The household (世帯) through the API: PUT and GET /api/cases/<id>/household, who may read and
change it, its validation, its audit records, and the 図4 inputs it offers the intake form."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from engine.models import AuditRecord, Case, HouseholdMember

MOTHER = {"name": "山田 花子", "kana": "やまだ はなこ", "birth_date": "1948-03-10", "sex": "female", "relation": "本人",
          "attributes": ["elderly"], "address": "豊中市中桜塚3-1-1", "phone": "06-6858-0000",
          "department": "choju-anshin"}
SON = {"name": "山田 太郎", "kana": "ヤマダ タロウ", "birth_date": "1976-11-02", "sex": "male", "relation": "子",
       "attributes": []}


def open_case(client, summary: str = "高齢の母と無職の息子の世帯") -> dict:  # noqa: ANN001
    r = client.post("/api/cases", json={"process": "multi_agency", "data": {"summary": summary}})
    assert r.status_code == 201, r.json
    return r.json


def intake_data(client, case_id: str) -> dict:  # noqa: ANN001
    case = client.get(f"/api/cases/{case_id}").json
    (task,) = [t for t in case["open_tasks"] if t["step"] == "intake"]
    return client.get(f"/api/tasks/{task['id']}").json["data"]


def actions(session_factory, case_id: str) -> list[str]:  # noqa: ANN001
    with session_factory() as s:
        return list(s.scalars(select(AuditRecord.action).where(AuditRecord.case_id == case_id)
                              .order_by(AuditRecord.seq)))


def test_a_household_put_is_what_get_answers_with_each_members_age(api, clock) -> None:  # noqa: ANN001
    clock.set(datetime(2026, 3, 9, 16, 0, tzinfo=UTC))  # 2026-03-10 01:00 in Japan: her birthday there
    ref = api("caseworker")
    case = open_case(ref)
    r = ref.put(f"/api/cases/{case['id']}/household", json={"members": [MOTHER, SON]})
    assert r.status_code == 200, r.json
    assert r.json == ref.get(f"/api/cases/{case['id']}/household").json
    mother, son = r.json["members"]
    assert mother == {**MOTHER, "age": 78}
    assert son == {**SON, "address": None, "phone": None, "department": None, "age": 49}
    # What was read can be sent back as it is (age is ignored), and a shorter list replaces it.
    again = ref.put(f"/api/cases/{case['id']}/household", json={"members": [son]})
    assert again.status_code == 200 and [m["name"] for m in again.json["members"]] == ["山田 太郎"]
    assert ref.put(f"/api/cases/{case['id']}/household", json={"members": []}).json == {"members": []}


def test_age_follows_the_clocks_date_in_japan(api, clock) -> None:  # noqa: ANN001
    clock.set(datetime(2026, 3, 9, 14, 59, tzinfo=UTC))  # 23:59 on the 9th in Japan
    ref = api("caseworker")
    case = open_case(ref)
    ref.put(f"/api/cases/{case['id']}/household", json={"members": [MOTHER]})
    assert ref.get(f"/api/cases/{case['id']}/household").json["members"][0]["age"] == 77
    clock.advance(minutes=1)
    assert ref.get(f"/api/cases/{case['id']}/household").json["members"][0]["age"] == 78


@pytest.mark.parametrize(("members", "fields"), [
    ([MOTHER, {**SON, "birth_date": "1976-13-02"}], {"members.1.birth_date"}),
    ([{**MOTHER, "name": " "}], {"members.0.name"}),
    ([MOTHER, SON, {**SON, "attributes": ["rich"], "sex": "x", "department": "nowhere"}],
     {"members.2.attributes", "members.2.sex", "members.2.department"}),
    ([{**SON, "phone": "call me"}, {**SON, "name": "x" * 201}], {"members.0.phone", "members.1.name"}),
    ([{**SON, "nickname": "タロ"}], {"members.0.nickname"}),
    ([{**SON, "birth_date": "2030-01-01"}], {"members.0.birth_date"}),
    ([SON] * 31, {"members"}),
    ("山田", {"members"}),
    ([3], {"members.0"}),
])
def test_bad_input_names_each_field_and_changes_nothing(api, session_factory, members, fields) -> None:  # noqa: ANN001
    ref = api("caseworker")
    case = open_case(ref)
    ref.put(f"/api/cases/{case['id']}/household", json={"members": [MOTHER]})
    before = actions(session_factory, case["id"])
    r = ref.put(f"/api/cases/{case['id']}/household", json={"members": members})
    assert r.status_code == 422, r.json
    assert r.json["error"]["code"] == "invalid" and set(r.json["error"]["fields"]) == fields
    assert " / " in r.json["error"]["message"]
    assert [m["name"] for m in ref.get(f"/api/cases/{case['id']}/household").json["members"]] == ["山田 花子"]
    assert actions(session_factory, case["id"])[len(before):] == ["household.read"]


def test_a_body_without_members_is_refused(api) -> None:  # noqa: ANN001
    ref = api("caseworker")
    case = open_case(ref)
    for body in ({}, [], {"members": [SON], "extra": 1}):
        r = ref.put(f"/api/cases/{case['id']}/household", json=body)
        assert r.status_code == 422, (body, r.json)


def test_an_outsider_gets_the_cases_own_404(api, session_factory) -> None:  # noqa: ANN001
    ref, outsider = api("caseworker"), api("outsider")
    case = open_case(ref)
    ref.put(f"/api/cases/{case['id']}/household", json={"members": [MOTHER]})
    case_404 = outsider.get(f"/api/cases/{case['id']}")
    assert case_404.status_code == 404
    for r in (outsider.get(f"/api/cases/{case['id']}/household"),
              outsider.put(f"/api/cases/{case['id']}/household", json={"members": [SON]})):
        assert r.status_code == 404 and r.json == case_404.json
    assert outsider.get("/api/cases/no-such-case/household").json == case_404.json
    assert [m["name"] for m in ref.get(f"/api/cases/{case['id']}/household").json["members"]] == ["山田 花子"]
    assert actions(session_factory, case["id"]).count("access.denied") == 3


def test_a_group_the_case_was_shared_with_reads_but_may_not_change_it(api) -> None:  # noqa: ANN001
    ref, sec, outsider = api("caseworker"), api("secretariat"), api("outsider")
    case = open_case(ref)
    assert ref.post(f"/api/cases/{case['id']}/consent", json={"consent": "given"}).status_code == 200
    r = sec.post(f"/api/cases/{case['id']}/shares", json={"group": "wakamono-sodan", "purpose": "評価"})
    assert r.status_code in (200, 201), r.json
    assert outsider.get(f"/api/cases/{case['id']}/household").status_code == 200
    r = outsider.put(f"/api/cases/{case['id']}/household", json={"members": [SON]})
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    # The secretariat may, though the case is not its referral.
    assert sec.put(f"/api/cases/{case['id']}/household", json={"members": [SON]}).status_code == 200


def test_reads_and_changes_are_on_the_audit_trail_without_the_names(api, session_factory) -> None:  # noqa: ANN001
    ref = api("caseworker")
    case = open_case(ref)
    ref.put(f"/api/cases/{case['id']}/household", json={"members": [MOTHER, SON]})
    ref.get(f"/api/cases/{case['id']}/household")
    with session_factory() as s:
        rows = list(s.scalars(select(AuditRecord).where(AuditRecord.case_id == case["id"],
                                                        AuditRecord.action.like("household.%"))
                              .order_by(AuditRecord.seq)))
    assert [(r.action, r.actor_name) for r in rows] == [("household.change", "hokatsu.sato"),
                                                        ("household.read", "hokatsu.sato")]
    assert rows[0].detail["members"] == 2 and "山田" not in str([r.detail for r in rows])


def test_a_change_is_in_the_cases_history_and_its_search_text(api, session_factory) -> None:  # noqa: ANN001
    ref = api("caseworker")
    case = open_case(ref)
    ref.put(f"/api/cases/{case['id']}/household", json={"members": [MOTHER, SON]})
    history = ref.get(f"/api/cases/{case['id']}").json["history"]
    change = [e for e in history if e["kind"] == "household_changed"]
    assert len(change) == 1 and change[0]["actor"] == "hokatsu.sato" and change[0]["data"] == {"members": 2}
    with session_factory() as s:
        text = s.get(Case, case["id"]).search_text
        assert "やまだ たろう" in text and "山田 花子" in text and "高齢の母" in text
        assert s.scalar(select(HouseholdMember.position).where(HouseholdMember.name == "山田 太郎")) == 1


@pytest.mark.parametrize(("members", "expected"), [
    ([MOTHER], {"multiple_targets": False, "all_targets_have_lead_department": True}),
    ([MOTHER, {**SON, "attributes": ["poverty"], "department": "kurashi-shien"}],
     {"multiple_targets": True, "all_targets_have_lead_department": True}),
    # The son has a need (poverty) but no department yet: 図4's fifth column.
    ([MOTHER, {**SON, "attributes": ["poverty"]}],
     {"multiple_targets": True, "all_targets_have_lead_department": False}),
    # He only lives there: one target.
    ([MOTHER, SON], {"multiple_targets": False, "all_targets_have_lead_department": True}),
    # The person concerned is 18-64 and not in poverty: no department (図4's third column).
    ([{**SON, "relation": "本人"}], {"multiple_targets": False, "all_targets_have_lead_department": False}),
], ids=["one-target", "several-each-with-department", "someone-without-department", "one-target-and-family",
        "no-department"])
def test_the_intake_form_is_offered_the_criteria_inputs_the_household_answers(api, members, expected) -> None:  # noqa: ANN001
    ref = api("caseworker")
    case = open_case(ref, "相談")
    ref.put(f"/api/cases/{case['id']}/household", json={"members": members})
    assert intake_data(ref, case["id"]) == {"summary": "相談", **expected}


def test_without_a_household_the_criteria_inputs_are_left_to_the_caseworker(api) -> None:  # noqa: ANN001
    ref = api("caseworker")
    case = open_case(ref, "相談")
    assert intake_data(ref, case["id"]) == {"summary": "相談"}
    ref.put(f"/api/cases/{case['id']}/household", json={"members": [{**SON}]})  # no target named
    assert intake_data(ref, case["id"]) == {"summary": "相談"}


def test_the_offered_inputs_stay_editable_and_the_decision_shows_its_column(api) -> None:  # noqa: ANN001
    ref = api("caseworker")
    case = open_case(ref, "相談")
    ref.put(f"/api/cases/{case['id']}/household", json={"members": [MOTHER]})
    offered = intake_data(ref, case["id"])
    assert offered["multiple_targets"] is False
    detail = ref.get(f"/api/cases/{case['id']}").json
    (task,) = detail["open_tasks"]
    answers = {**offered, "multiple_targets": True, "all_targets_have_lead_department": False,
               "lead_department_can_handle_alone": False, "coordination_problem": False, "consent": "given"}
    r = ref.post(f"/api/tasks/{task['id']}/complete", json={"data": answers})
    assert r.status_code == 200, r.json
    assert r.json["case"]["decision"] == {"result": "eligible", "rule": "Rule_several_someone_without_department"}


def test_the_openapi_document_describes_the_household(app) -> None:  # noqa: ANN001
    doc = app.test_client().get("/api/openapi.json").json
    ops = doc["paths"]["/api/cases/{case_id}/household"]
    assert {"200", "401", "404"} <= set(ops["get"]["responses"])
    assert {"200", "401", "403", "404", "422"} <= set(ops["put"]["responses"])
    member = doc["components"]["schemas"]["HouseholdMemberIn"]["properties"]
    assert {"name", "kana", "birth_date", "sex", "relation", "attributes", "address", "phone", "department"} <= set(member)
