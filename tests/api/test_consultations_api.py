"""Consultations at any window and consultation days (総合相談会) through the API: the
categories (the window's own list, else the source's default set), recording with and
without a person, opening or linking a case, listing with filters, bad input named by
field with nothing stored, and a consultation day's walk-ins and report."""

from __future__ import annotations

import pytest

from engine.models import Consultation

DEFAULT_CONTENT = [("system_question", "制度の質問"), ("hardship", "生活困窮"), ("other_infection", "その他（感染症）"),
                   ("other", "その他")]
DEFAULT_RESPONSE = [("information", "情報提供"), ("other_agency", "他機関紹介"), ("kurashi_saiken", "くらし再建紹介")]
GOOD = {"received_on": "2026-03-31", "content": "hardship", "response": "kurashi_saiken", "channel": "phone"}


def test_categories_are_the_default_set_unless_the_window_has_its_own(api) -> None:  # noqa: ANN001
    ref = api("caseworker")
    body = ref.get("/api/consultations/categories").json
    assert [(c["code"], c["name"]) for c in body["content"]] == DEFAULT_CONTENT
    assert [(c["code"], c["name"]) for c in body["response"]] == DEFAULT_RESPONSE
    own = ref.get("/api/consultations/categories?group=wakamono-sodan").json
    assert "withdrawal" in [c["code"] for c in own["content"]]
    assert ref.get("/api/consultations/categories?group=hokatsu-center").json == body
    assert ref.get("/api/consultations/categories?group=nowhere").status_code == 422


def test_a_window_records_a_consultation_without_a_case(api, session) -> None:  # noqa: ANN001
    ref = api("caseworker")
    r = ref.post("/api/consultations", json=GOOD)
    assert r.status_code == 201, r.json
    c = r.json
    assert (c["group"], c["content"], c["response"], c["channel"], c["case_id"], c["person"]) == \
           ("hokatsu-center", "hardship", "kurashi_saiken", "phone", None, None)
    assert ref.post("/api/consultations", json={k: v for k, v in GOOD.items() if k != "channel"}).json["channel"] == \
           "visit_in"


@pytest.mark.parametrize(("change", "field"), [
    ({"content": "unknown"}, "content"),
    ({"response": "Information"}, "response"),
    ({"content": "withdrawal"}, "content"),  # another window's category
    ({"channel": "fax"}, "channel"),
    ({"received_on": "2026-02-30"}, "received_on"),
    ({"received_on": "2027-01-01"}, "received_on"),
    ({"received_on": 20260401}, "received_on"),
    ({"group": "nowhere"}, "group"),
    ({"person": {"name": "山田 花子"}}, "consent"),
    ({"person": {"name": "山田 花子"}, "consent": "not_given"}, "consent"),
    ({"consent": "maybe"}, "consent"),
    ({"open_case": "yes"}, "open_case"),
    ({"note": "x" * 4001}, "note"),
    ({"extra": 1}, "extra"),
])
def test_bad_consultations_are_refused_naming_the_field_and_store_nothing(api, session, change, field) -> None:  # noqa: ANN001
    r = api("caseworker").post("/api/consultations", json={**GOOD, **change})
    assert r.status_code == 422, r.json
    assert field in r.json["error"]["fields"] and " / " in r.json["error"]["message"]
    assert session.query(Consultation).count() == 0


def test_missing_required_fields_are_named(api) -> None:  # noqa: ANN001
    r = api("caseworker").post("/api/consultations", json={})
    assert r.status_code == 422
    assert {"received_on", "content", "response"} <= set(r.json["error"]["fields"])


def test_a_person_is_kept_only_with_consent(api) -> None:  # noqa: ANN001
    r = api("caseworker").post("/api/consultations", json={**GOOD, "person": {"name": "山田 花子", "contact": "06-0000"},
                                                           "consent": "given"})
    assert r.status_code == 201 and r.json["person"] == {"name": "山田 花子", "contact": "06-0000"}
    assert r.json["consent"] == "given"


def test_a_consultation_opens_a_case_with_intake_prefilled(api) -> None:  # noqa: ANN001
    ref = api("caseworker")
    r = ref.post("/api/consultations", json={**GOOD, "open_case": True, "consent": "given", "note": "家賃の滞納"})
    assert r.status_code == 201, r.json
    case = ref.get(f"/api/cases/{r.json['case_id']}").json
    assert case["process"] == "multi_agency" and case["referring_group"] == "hokatsu-center"
    assert case["consent"] == "given"
    [intake] = case["open_tasks"]
    prefill = ref.get(f"/api/tasks/{intake['id']}").json["data"]
    assert prefill["summary"] == "相談（生活困窮）からの案件。家賃の滞納" and prefill["consent"] == "given"


def test_linking_needs_a_case_the_caller_may_see(api) -> None:  # noqa: ANN001
    ref, outsider = api("caseworker"), api("elder_care")
    case = ref.post("/api/cases", json={"process": "multi_agency", "data": {"summary": "相談"}}).json
    ok = ref.post("/api/consultations", json={**GOOD, "case_id": case["id"]})
    assert ok.status_code == 201 and ok.json["case_id"] == case["id"]
    hidden = outsider.post("/api/consultations", json={**GOOD, "case_id": case["id"]})
    missing = outsider.post("/api/consultations", json={**GOOD, "case_id": "no-such-case"})
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json["error"]["message"] == missing.json["error"]["message"]
    both = ref.post("/api/consultations", json={**GOOD, "case_id": case["id"], "open_case": True})
    assert both.status_code == 422 and "case_id" in both.json["error"]["fields"]


def test_list_filters_and_pages_within_the_callers_windows(api) -> None:  # noqa: ANN001
    ref, outsider, sec = api("caseworker"), api("outsider"), api("secretariat")
    for day, content in (("2026-03-01", "hardship"), ("2026-03-15", "other"), ("2026-03-31", "hardship")):
        assert ref.post("/api/consultations", json={**GOOD, "received_on": day, "content": content}).status_code == 201
    assert outsider.post("/api/consultations", json={**GOOD, "content": "work", "response": "continued"}).status_code == 201
    mine = ref.get("/api/consultations").json
    assert mine["total"] == 3 and [c["received_on"] for c in mine["items"]] == ["2026-03-31", "2026-03-15", "2026-03-01"]
    assert sec.get("/api/consultations").json["total"] == 4
    assert ref.get("/api/consultations?content=hardship&from=2026-03-02").json["total"] == 1
    page = ref.get("/api/consultations?limit=1&offset=1").json
    assert page["total"] == 3 and [c["received_on"] for c in page["items"]] == ["2026-03-15"]
    assert ref.get("/api/consultations?limit=501").status_code == 422
    assert "from" in ref.get("/api/consultations?from=March").json["error"]["fields"]


def test_a_consultation_day_counts_its_walk_ins_in_the_sources_shape(api) -> None:  # noqa: ANN001
    sec, ref, outsider = api("secretariat"), api("caseworker"), api("outsider")
    event = {"title": "くらしを守る総合相談会", "held_on": "2026-03-20", "place": "豊中市役所 第二庁舎",
             "groups": ["hokatsu-center", "kurashi-shien"], "professionals": ["lawyer", "financial_planner"]}
    assert ref.post("/api/events", json=event).status_code == 403
    bad = sec.post("/api/events", json={**event, "professionals": ["astrologer"]})
    assert bad.status_code == 422 and "professionals.0" in bad.json["error"]["fields"]
    made = sec.post("/api/events", json=event)
    assert made.status_code == 201, made.json
    eid = made.json["id"]
    walk_ins = [["hardship", "housing"], ["hardship"], ["work", "hardship", "other"], ["other"]]
    for kinds in walk_ins:
        r = ref.post(f"/api/events/{eid}/consultations", json={"kinds": kinds})
        assert r.status_code == 201, r.json
        assert r.json["channel"] == "event" and r.json["received_on"] == "2026-03-20"
    follow = ref.post(f"/api/events/{eid}/consultations", json={"kinds": ["housing"], "follow_up": "case",
                                                                "consent": "given"})
    assert follow.status_code == 201 and follow.json["case_id"]
    assert outsider.post(f"/api/events/{eid}/consultations", json={"kinds": ["other"]}).status_code == 403
    assert "kinds.0" in ref.post(f"/api/events/{eid}/consultations", json={"kinds": ["debtz"]}).json["error"]["fields"]
    assert ref.post("/api/events/999/consultations", json={"kinds": ["other"]}).status_code == 404

    report = ref.get(f"/api/events/{eid}").json["report"]
    assert report["visitors"] == 5 and report["complex"] == 2 and report["cases_opened"] == 1
    assert {k: v for k, v in report["kinds"].items() if v} == {"hardship": 3, "housing": 2, "work": 1, "other": 2}
    assert report["text"] == "相談来所者 5人（複合課題 2人）、困窮 3件・仕事 1件・住宅 2件・その他 2件"
    assert [e["id"] for e in ref.get("/api/events").json] == [eid]
    assert ref.get(f"/api/consultations?event={eid}").json["total"] == 5
