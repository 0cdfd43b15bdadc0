"""The national standard sheets in our forms (NATIONAL_FORMS.md): the variant a case without
consent gets, in the served schema and in what the engine accepts; the items reported to the
national government; the support meeting's policy offered from the plan (defect 8); the
emergency judgement's optional 「危険が及ぶもの」 (defect 5)."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from engine.errors import Invalid
from engine.settings import ROOT
from engine.workflow import annotations, forms, specs
from tests.api.test_api import ELIGIBLE, complete, only_task

FORMS = specs.read_forms(ROOT / "forms")
APPLICATION = {"applied": True, "privacy_acknowledged": True, "applied_on": "2026-04-01", "signed_by": "person"}
PLAN = {"issues": "介護・不登校", "policy": "長寿安心課が祖母を、こども相談課が孫を見守る", "monitoring_interval": "P14D"}


def served(client, case_id: str, step: str) -> dict:  # noqa: ANN001
    return client.get(f"/api/tasks/{only_task(client, case_id, step)['id']}").json


def new_case(client) -> str:  # noqa: ANN001
    return client.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "祖母と孫"}}).json["id"]


def test_a_consenting_case_fills_in_the_application_block(api) -> None:  # noqa: ANN001
    ref, sec = api("caseworker"), api("secretariat")
    case_id = new_case(ref)
    intake = served(ref, case_id, "intake")
    assert intake["schema"]["x-tsunagu-variant"] == "with_consent"
    assert set(APPLICATION) <= set(intake["schema"]["properties"])
    # the rule is plain JSON Schema: a client validating the served form agrees with the engine
    plain = Draft202012Validator(intake["schema"])
    assert not list(plain.iter_errors({**ELIGIBLE, **APPLICATION}))
    assert list(plain.iter_errors({**ELIGIBLE, **APPLICATION, "consent": "unknown"}))
    done = complete(ref, case_id, "intake", {**ELIGIBLE, **APPLICATION, "concerns": ["care", "childcare"],
                                             "main_concern": "care", "work_status": "pensioner"})
    started = [h for h in done["history"] if h["kind"] == "task_completed"][-1]
    assert started["data"]["applied"] is True and started["data"]["main_concern"] == "care"
    complete(sec, case_id, "assessment", {"members": ["choju-anshin"], "assessment": "介護と不登校",
                                          "issue_kinds": ["care", "school"]})
    plan = served(sec, case_id, "plan")
    assert plan["schema"]["x-tsunagu-variant"] == "with_consent" and "plan_confirmed" in plan["schema"]["properties"]
    complete(sec, case_id, "plan", {**PLAN, "plan_confirmed": True, "plan_signed_on": "2026-04-10"})


def test_application_answers_without_consent_are_refused_naming_the_fields(api) -> None:  # noqa: ANN001
    ref = api("caseworker")
    case_id = new_case(ref)
    task = only_task(ref, case_id, "intake")
    r = ref.post(f"/api/tasks/{task['id']}/complete", json={"data": {**ELIGIBLE, **APPLICATION,
                                                                      "consent": "not_given"}})
    assert r.status_code == 422
    fields = r.json["error"]["fields"]
    assert set(fields) == {"applied", "privacy_acknowledged", "applied_on", "signed_by"}
    assert fields["applied"].startswith("本人の同意")
    assert ref.get(f"/api/cases/{case_id}").json["open_tasks"][0]["id"] == task["id"]  # nothing moved
    # an unticked box is no answer: a page sends it, and it is accepted
    complete(ref, case_id, "intake", {**ELIGIBLE, "consent": "not_given", "applied": False})


def test_a_case_without_consent_gets_the_variant_without_the_application_block(api) -> None:  # noqa: ANN001
    ref, sec = api("caseworker"), api("secretariat")
    case_id = new_case(ref)
    complete(ref, case_id, "intake", {**ELIGIBLE, "consent": "not_given"})
    complete(sec, case_id, "assessment", {"members": ["choju-anshin"], "assessment": "介護と不登校"})
    plan = served(sec, case_id, "plan")["schema"]
    assert plan["x-tsunagu-variant"] == "without_consent" and plan["title"].endswith("（本人同意なし・支援会議）")
    assert not {"plan_confirmed", "plan_signed_on"} & set(plan["properties"])
    task = only_task(sec, case_id, "plan")
    r = sec.post(f"/api/tasks/{task['id']}/complete", json={"data": {**PLAN, "plan_confirmed": True}})
    assert r.status_code == 422 and set(r.json["error"]["fields"]) == {"plan_confirmed"}
    complete(sec, case_id, "plan", PLAN)


def test_the_meeting_is_offered_the_plans_policy_and_may_change_it(api) -> None:  # noqa: ANN001
    ref, sec = api("caseworker"), api("secretariat")
    case_id = new_case(ref)
    complete(ref, case_id, "intake", ELIGIBLE)
    complete(sec, case_id, "assessment", {"members": ["choju-anshin"], "assessment": "介護と不登校"})
    complete(sec, case_id, "plan", PLAN)
    meeting = served(sec, case_id, "meeting")
    assert meeting["data"]["decided_policy"] == PLAN["policy"]
    changed = "長寿安心課が祖母を、学校が孫を見守る"
    done = complete(sec, case_id, "meeting", {"held_on": "2026-04-20", "participants": ["choju-anshin"],
                                              "roles": [{"group": "choju-anshin", "role": "介護サービス調整"}],
                                              "decided_policy": changed})
    assert [h for h in done["history"] if h["kind"] == "task_completed"][-1]["data"]["decided_policy"] == changed


def test_prefill_takes_the_newest_earlier_answer() -> None:
    schema = FORMS["support_meeting"]
    newest_first = [{"next": "meeting"}, {"decided_policy": "会議で修正した方針"}, {"policy": "計画の方針"}]
    assert annotations.prefill(schema, {}, newest_first)["decided_policy"] == "会議で修正した方針"
    assert annotations.prefill(schema, {}, newest_first[2:])["decided_policy"] == "計画の方針"
    assert annotations.prefill(schema, {"decided_policy": "下書き"}, newest_first)["decided_policy"] == "下書き"
    assert "decided_policy" not in annotations.prefill(schema, {}, [{"policy": ""}])


def test_the_national_report_items_are_marked() -> None:
    assert {"received_on", "concerns", "main_concern", "consent", "applied", "work_status", "housing_type"} <= set(
        annotations.national_report_fields(FORMS["intake"]))
    assert "issue_kinds" in annotations.national_report_fields(FORMS["assessment"])
    assert {"services", "participation", "outreach", "plan_made_on"} <= set(
        annotations.national_report_fields(FORMS["support_plan"]))
    assert {"goal_achievement", "changes", "outcome"} <= set(annotations.national_report_fields(FORMS["closure"]))
    # what the served form carries, for a statistics client
    served_intake = forms.standard(FORMS["intake"], [])
    assert served_intake["properties"]["concerns"]["x-tsunagu-report"] == "national"


def test_identity_fields_are_not_asked_again() -> None:
    # 氏名, ふりがな, 性別, 生年月日, 住所, 電話 are the household's (entered once)
    for key in ("intake", "assessment", "support_plan", "closure"):
        assert not {"name", "kana", "birth_date", "sex", "address", "phone"} & set(FORMS[key]["properties"]), key


@pytest.mark.parametrize("bad", [{"x-tsunagu-consent-only": "yes"}, {"x-tsunagu-prefill": "policy"},
                                 {"x-tsunagu-report": "city"}, {"x-tsunagu-section": 3}])
def test_a_designers_form_with_a_wrong_annotation_is_refused(bad: dict) -> None:
    schema = {"type": "object", "properties": {"x": {"type": "boolean", "title": "x", **bad}}}
    assert set(forms.check_schema(schema)) == {"properties.x"}


def test_a_required_field_cannot_be_consent_only() -> None:
    schema = {"type": "object", "required": ["x"],
              "properties": {"x": {"type": "boolean", "title": "x", "x-tsunagu-consent-only": True}}}
    assert "properties.x" in forms.check_schema(schema)


def test_the_danger_list_is_optional(api) -> None:  # noqa: ANN001
    finder = api("caseworker")
    case = finder.post("/api/cases", json={"process": "emergency", "data": {"summary": "異臭"}}).json
    judgement = served(finder, case["id"], "judge_urgency")["schema"]
    assert "danger_to" not in judgement["required"]
    done = complete(finder, case["id"], "judge_urgency", {"urgency": "low", "situation": "応答あり"})
    assert [t["step"] for t in done["open_tasks"]] == ["respond"]


def test_the_engine_refuses_what_the_variant_lacks(env) -> None:  # noqa: ANN001
    without = annotations.for_consent(FORMS["intake"], "not_given")
    with pytest.raises(Invalid) as err:
        forms.validate(without, {**ELIGIBLE, "applied": True}, env.org.group_ids())
    assert set(err.value.fields) == {"applied"}
    assert FORMS["intake"]["properties"]["applied"]  # the stored form is left as it is
    assert annotations.for_consent(FORMS["emergency_end"], "not_given") is FORMS["emergency_end"]
