"""GET /api/cases: every case one may see, found by number, summary and the household's names and
kana whatever the kana's script or width, filtered by status, process, step and referring group,
paged with the total in X-Total-Count, and never a case the caller may not see."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update

from engine.casework import search
from engine.casework.timers import fire_due
from engine.models import Case, CaseSearchGram, CaseSearchText, HouseholdMember
from tests.api.test_api import ELIGIBLE, NOT_ELIGIBLE, complete


def open_case(client, summary: str = "相談", process: str = "multi_agency") -> dict:  # noqa: ANN001
    r = client.post("/api/cases", json={"process": process, "data": {"summary": summary}})
    assert r.status_code == 201, r.json
    return r.json


def add_household(session_factory, clock, case_id: str, members: list[tuple[str, str]]) -> None:  # noqa: ANN001
    """The household as the household editor leaves it: the rows, and the case's search text
    recomputed in the same transaction."""
    with session_factory() as s:
        case = s.get(Case, case_id)
        for position, (name, kana) in enumerate(members):
            s.add(HouseholdMember(case_id=case_id, position=position, name=name, kana=kana, attributes=[],
                                  updated_at=clock.now()))
        s.flush()
        search.reindex(s, case)
        s.commit()


def numbers(response) -> list[str]:  # noqa: ANN001
    assert response.status_code == 200, response.json
    return [c["number"] for c in response.json]


@pytest.fixture
def yamada(api, session_factory, clock) -> dict:  # noqa: ANN001
    """A case of the caseworker's agency whose household is written in katakana and kanji."""
    case = open_case(api("caseworker"), "高齢の母と不登校の子")
    add_household(session_factory, clock, case["id"], [("山田 太郎", "ヤマダ タロウ"), ("山田 ハナ", "ヤマダ ハナ")])
    open_case(api("caseworker"), "別の世帯の相談")
    return case


def test_a_hiragana_query_finds_a_name_written_in_katakana(api, yamada) -> None:  # noqa: ANN001
    assert numbers(api("caseworker").get("/api/cases", query_string={"q": "やまだ"})) == [yamada["number"]]
    assert numbers(api("caseworker").get("/api/cases", query_string={"q": "やまだ たろう"})) == [yamada["number"]]


def test_katakana_and_half_width_queries_find_a_kana_written_in_hiragana(api, session_factory, clock) -> None:  # noqa: ANN001
    case = open_case(api("caseworker"))
    add_household(session_factory, clock, case["id"], [("佐々木 陽菜", "ささき ひな")])
    for q in ("ササキ", "ｻｻｷ ﾋﾅ", "ささき"):
        assert numbers(api("caseworker").get("/api/cases", query_string={"q": q})) == [case["number"]], q


def test_kanji_names_and_the_summary_are_found(api, yamada) -> None:  # noqa: ANN001
    client = api("caseworker")
    assert numbers(client.get("/api/cases", query_string={"q": "山田 ハナ"})) == [yamada["number"]]
    assert numbers(client.get("/api/cases", query_string={"q": "不登校"})) == [yamada["number"]]
    # Every word must occur: a name with another case's summary finds nothing.
    assert numbers(client.get("/api/cases", query_string={"q": "山田 別の世帯"})) == []


def test_the_case_number_is_found_also_typed_in_full_width(api, yamada) -> None:  # noqa: ANN001
    client = api("caseworker")
    number = yamada["number"]
    assert numbers(client.get("/api/cases", query_string={"q": number})) == [number]
    wide = number.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})  # ＭＡ－２０２６－…
    assert numbers(client.get("/api/cases", query_string={"q": wide.lower()})) == [number]


def test_like_wildcards_in_a_query_are_taken_literally(api, yamada) -> None:  # noqa: ANN001
    for q in ("%", "_", "山%太郎", "\\"):
        assert numbers(api("caseworker").get("/api/cases", query_string={"q": q})) == [], q


def test_closed_cases_and_cases_waiting_for_their_monitoring_timer_are_found(api, clock, session_factory,
                                                                              env) -> None:  # noqa: ANN001
    ref, sec, lead = api("caseworker"), api("secretariat"), api("lead")
    closed = open_case(ref, "介護サービスで対応")
    complete(ref, closed["id"], "intake", {**NOT_ELIGIBLE, "summary": "介護サービスで対応"})
    complete(lead, closed["id"], "advice", {"advice": "長寿安心課で対応可能"})
    assert complete(ref, closed["id"], "advice_received", {"acknowledged": True})["status"] == "completed"

    waiting = open_case(ref, "見守りが続く世帯")
    complete(ref, waiting["id"], "intake", ELIGIBLE)
    complete(sec, waiting["id"], "assessment", {"members": ["choju-anshin"], "assessment": "介護と不登校"})
    complete(sec, waiting["id"], "plan", {"issues": "介護", "policy": "見守り", "monitoring_interval": "P14D"})
    state = complete(sec, waiting["id"], "meeting", {
        "held_on": "2026-04-01", "participants": ["choju-anshin"],
        "roles": [{"group": "choju-anshin", "role": "介護サービス調整"}]})
    assert state["open_tasks"] == [] and len(state["timers"]) == 1
    timer_step = state["timers"][0]["step"]
    active = open_case(ref, "受付中")

    # Neither is in anyone's work queue, yet both are found.
    queue = {t["case_id"] for t in sec.get("/api/tasks").json + ref.get("/api/tasks").json}
    assert closed["id"] not in queue and waiting["id"] not in queue
    assert numbers(ref.get("/api/cases", query_string={"status": "completed"})) == [closed["number"]]
    # Intake replaced the summary with its own.
    assert numbers(ref.get("/api/cases", query_string={"q": "小学生"})) == [waiting["number"]]
    found = ref.get("/api/cases", query_string={"step": timer_step})
    assert numbers(found) == [waiting["number"]]
    assert found.json[0]["steps"] == [{"kind": "timer", "step": timer_step, "name": state["timers"][0]["name"]}]
    assert set(numbers(ref.get("/api/cases", query_string={"status": "active"}))) == {waiting["number"],
                                                                                       active["number"]}
    listed = {c["number"]: c for c in ref.get("/api/cases").json}
    assert listed[closed["number"]]["steps"] == []
    assert [s["step"] for s in listed[active["number"]]["steps"]] == ["intake"]

    # When the timer fires the case is at the monitoring step: found by it, not by the timer.
    clock.advance(days=15)
    assert fire_due(session_factory, env, clock.now()) == 1
    assert numbers(ref.get("/api/cases", query_string={"step": "monitoring"})) == [waiting["number"]]
    assert numbers(ref.get("/api/cases", query_string={"step": timer_step})) == []


def test_filters_combine_with_the_query(api) -> None:  # noqa: ANN001
    ref, sec = api("caseworker"), api("secretariat")
    mine = open_case(ref, "母の介護")
    emergency = open_case(ref, "母の異臭通報", process="emergency")
    theirs = sec.post("/api/cases", json={"process": "multi_agency", "group": "secretariat",
                                          "data": {"summary": "母の就労"}}).json
    assert set(numbers(sec.get("/api/cases", query_string={"q": "母"}))) == {
        mine["number"], emergency["number"], theirs["number"]}
    assert numbers(sec.get("/api/cases", query_string={"q": "母", "process": "multi_agency",
                                                       "group": "hokatsu-center"})) == [mine["number"]]
    assert numbers(sec.get("/api/cases", query_string={"q": "母", "process": "emergency",
                                                       "status": "active"})) == [emergency["number"]]
    assert numbers(sec.get("/api/cases", query_string={"q": "母", "status": "completed"})) == []
    assert numbers(sec.get("/api/cases", query_string={"process": "multi_agency", "step": "intake",
                                                       "group": "secretariat"})) == [theirs["number"]]


def test_pages_come_newest_first_with_the_total_in_a_header(api, clock) -> None:  # noqa: ANN001
    client = api("caseworker")
    made = []
    colours = ["あお", "あか", "きいろ", "みどり", "しろ"]
    for colour in colours:
        made.append(open_case(client, f"ページ {colour}")["number"])
        clock.advance(minutes=1)
    newest_first = list(reversed(made))
    r = client.get("/api/cases", query_string={"q": "ページ", "limit": 2})
    assert numbers(r) == newest_first[:2] and r.headers["X-Total-Count"] == "5"
    r = client.get("/api/cases", query_string={"q": "ページ", "limit": 2, "offset": 4})
    assert numbers(r) == newest_first[4:] and r.headers["X-Total-Count"] == "5"
    r = client.get("/api/cases", query_string={"q": "ページ", "limit": 2, "offset": 10})
    assert numbers(r) == [] and r.headers["X-Total-Count"] == "5"
    r = client.get("/api/cases", query_string={"q": "ぺーじ ミドリ"})
    assert numbers(r) == [made[3]] and r.headers["X-Total-Count"] == "1"
    assert client.get("/api/cases").headers["X-Total-Count"] == "5"


def test_another_agency_neither_finds_nor_counts_a_case_it_may_not_see(api, yamada) -> None:  # noqa: ANN001
    outsider = api("outsider")
    mine = open_case(outsider, "若者の相談 山田")
    r = outsider.get("/api/cases", query_string={"q": "山田"})
    assert numbers(r) == [mine["number"]] and r.headers["X-Total-Count"] == "1"
    r = outsider.get("/api/cases", query_string={"q": "やまだ", "group": "hokatsu-center"})
    assert numbers(r) == [] and r.headers["X-Total-Count"] == "0"
    assert numbers(outsider.get("/api/cases", query_string={"q": yamada["number"]})) == []
    # The secretariat sees every case, both agencies'.
    r = api("secretariat").get("/api/cases", query_string={"q": "山田"})
    assert set(numbers(r)) == {mine["number"], yamada["number"]} and r.headers["X-Total-Count"] == "2"


def test_a_search_is_an_audited_read_with_its_query(api, yamada, session_factory) -> None:  # noqa: ANN001
    from sqlalchemy import select

    from engine.models import AuditRecord

    api("caseworker").get("/api/cases", query_string={"q": "やまだ"})
    with session_factory() as s:
        row = s.scalars(select(AuditRecord).where(AuditRecord.action == "case.list").order_by(AuditRecord.seq.desc())).first()
    assert row.detail == {"cases": [yamada["number"]], "query": {"q": "やまだ"}}


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"limit": "many"}, "limit"),
    ({"offset": -1}, "offset"), ({"offset": 2**40}, "offset"),
    ({"status": "closed"}, "status"), ({"process": "no_such_process"}, "process"),
    ({"group": "no-such-group"}, "group"), ({"q": "あ" * 201}, "q"), ({"step": "s" * 101}, "step"),
    ({"q": " ".join("あ" * 11)}, "q"),
])
def test_bad_parameters_are_refused_naming_the_parameter(api, yamada, params, field) -> None:  # noqa: ANN001
    r = api("caseworker").get("/api/cases", query_string=params)
    assert r.status_code == 422, r.json
    assert r.json["error"]["code"] == "invalid" and field in r.json["error"]["fields"], r.json


def test_the_openapi_document_names_the_parameters_and_the_total_header(app) -> None:  # noqa: ANN001
    doc = app.test_client().get("/api/openapi.json").json
    op = doc["paths"]["/api/cases"]["get"]
    assert {p["name"] for p in op["parameters"]} >= {"q", "status", "process", "step", "group", "limit", "offset"}
    assert "X-Total-Count" in op["responses"]["200"]["headers"]


def test_a_changed_household_is_found_by_its_new_names_only(api, session_factory, clock) -> None:  # noqa: ANN001
    """The search's pairs index follows the household: the old name's pairs go with it."""
    case = open_case(api("caseworker"), "家賃の滞納")
    add_household(session_factory, clock, case["id"], [("森 一郎", "モリ イチロウ")])
    assert numbers(api("caseworker").get("/api/cases", query_string={"q": "いちろう"})) == [case["number"]]
    with session_factory() as s:
        s.query(HouseholdMember).filter_by(case_id=case["id"]).delete()
        s.commit()
    add_household(session_factory, clock, case["id"], [("林 二郎", "ハヤシ ジロウ")])
    assert numbers(api("caseworker").get("/api/cases", query_string={"q": "いちろう"})) == []
    assert numbers(api("caseworker").get("/api/cases", query_string={"q": "じろう"})) == [case["number"]]
    # One character has no pair: it is looked for in every case's text.
    assert numbers(api("caseworker").get("/api/cases", query_string={"q": "林"})) == [case["number"]]
    assert numbers(api("caseworker").get("/api/cases", query_string={"q": "林 滞納"})) == [case["number"]]


def index_of(session_factory, case_id: str) -> tuple[str, str | None, set[str]]:  # noqa: ANN001
    """The case's search text, the text the search index holds for it and the index's pieces."""
    with session_factory() as s:
        held = s.execute(select(CaseSearchText.doc, CaseSearchText.text).where(CaseSearchText.case_id == case_id)).one_or_none()
        pieces = set(s.scalars(select(CaseSearchGram.gram).where(CaseSearchGram.doc == held.doc))) if held else set()
        return s.get(Case, case_id).search_text, held.text if held else None, pieces


def assert_in_step(session_factory, case_id: str) -> str:  # noqa: ANN001
    text, held, pieces = index_of(session_factory, case_id)
    assert held == text and pieces == search.grams(text)
    return text


def test_the_search_index_follows_each_change_of_the_search_text(api, session_factory) -> None:  # noqa: ANN001
    ref = api("caseworker")
    case = open_case(ref, "家賃の滞納")
    assert "家賃の滞納" in assert_in_step(session_factory, case["id"])
    # the household: a member added, then replaced by another
    put = ref.put(f"/api/cases/{case['id']}/household", json={"members": [{"name": "森 一郎", "kana": "モリ イチロウ"}]})
    assert put.status_code == 200, put.json
    assert "いちろう" in assert_in_step(session_factory, case["id"])
    ref.put(f"/api/cases/{case['id']}/household", json={"members": [{"name": "林 二郎", "kana": "ハヤシ ジロウ"}]})
    text = assert_in_step(session_factory, case["id"])
    assert "いちろう" not in text and "じろう" in text
    assert numbers(ref.get("/api/cases", query_string={"q": "いちろう"})) == []
    assert numbers(ref.get("/api/cases", query_string={"q": "じろう 滞納"})) == [case["number"]]
    # the summary, changed at intake
    complete(ref, case["id"], "intake", {**ELIGIBLE, "summary": "ごみ屋敷と近隣の苦情"})
    text = assert_in_step(session_factory, case["id"])
    assert "ごみ屋敷" in text and "家賃" not in text
    assert numbers(ref.get("/api/cases", query_string={"q": "家賃"})) == []
    assert numbers(ref.get("/api/cases", query_string={"q": "ごみ屋敷"})) == [case["number"]]
    # the household emptied: the number and summary stay found
    ref.put(f"/api/cases/{case['id']}/household", json={"members": []})
    assert "じろう" not in assert_in_step(session_factory, case["id"])
    assert numbers(ref.get("/api/cases", query_string={"q": "ごみ"})) == [case["number"]]


def test_a_case_number_is_found_by_any_part_of_it(api, session_factory) -> None:  # noqa: ANN001
    client = api("caseworker")
    cases = [open_case(client, f"相談{chr(0x3042 + i)}") for i in range(12)]  # summaries without digits
    number = cases[10]["number"]  # MA-2026-00011 (the year of the clock)
    prefix, year, serial = number.split("-")
    for q in (serial, serial[1:], serial[-3:], f"{year}-{serial}", f"{prefix}-{year}-{serial[:3]}",
              f"{year[-2:]}-{serial[:2]}", number.lower(), f"-{serial}"):
        expected = sorted(c["number"] for c in cases if search.normalize(q) in c["number"].lower())
        assert sorted(numbers(client.get("/api/cases", query_string={"q": q}))) == expected, q
    assert numbers(client.get("/api/cases", query_string={"q": serial})) == [number]
    # two digits and one have no piece of their own: every case's text is tested
    for q in (serial[-2:], "1"):
        expected = sorted(c["number"] for c in cases if q in c["number"])
        assert expected and sorted(numbers(client.get("/api/cases", query_string={"q": q}))) == expected, q
    assert numbers(client.get("/api/cases", query_string={"q": f"{serial}9"})) == []


def test_the_check_reports_a_search_index_out_of_step(api, session_factory, env) -> None:  # noqa: ANN001
    from engine.ops.check import check_all

    case = open_case(api("caseworker"), "家賃の滞納")
    other = open_case(api("caseworker"), "別の相談")
    with session_factory() as s:
        assert [p for p in check_all(s, env).problems if "search index" in p.what] == []
        doc = s.scalar(select(CaseSearchText.doc).where(CaseSearchText.case_id == case["id"]))
        s.execute(delete(CaseSearchGram).where(CaseSearchGram.doc == doc, CaseSearchGram.gram == "家賃"))
        s.execute(update(CaseSearchText).where(CaseSearchText.case_id == other["id"]).values(text="x"))
        s.commit()
        found = {(p.case_number, p.what) for p in check_all(s, env).problems if "search index" in p.what}
    assert {n for n, _ in found} == {case["number"], other["number"]}
    assert any("lacks 1 " in what for n, what in found if n == case["number"])
