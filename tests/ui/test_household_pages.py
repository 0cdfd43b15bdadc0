"""The household (世帯) on the staff pages: its table and the 図4 decision on the case page, and
its edit page, which adds one member at a time and removes those ticked, without JavaScript."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from werkzeug.datastructures import MultiDict

from tests.ui.conftest import PageClient


def open_case(api) -> str:  # noqa: ANN001
    r = api("caseworker").post("/api/cases", json={"process": "multi_agency", "data": {"summary": "高齢の母と息子"}})
    return r.json["id"]


def row(i: int, **fields: str | list[str]) -> MultiDict:
    data = MultiDict()
    for key in ("name", "kana", "birth_date", "sex", "relation", "address", "phone", "department"):
        data.add(f"m-{i}-{key}", fields.get(key, ""))
    for code in fields.get("attributes", []):
        data.add(f"m-{i}-attributes", code)
    if fields.get("remove"):
        data.add(f"m-{i}-remove", "1")
    return data


def form(*rows: MultiDict, action: str) -> MultiDict:
    data = MultiDict({"ui-action": action})
    for r in rows:
        for key, value in r.items(multi=True):
            data.add(key, value)
    return data


def save(client: PageClient, case_id: str, *rows: MultiDict, action: str = "save"):  # noqa: ANN201
    return client.post(f"/cases/{case_id}/household", form(*rows, action=action))


def test_the_case_page_shows_the_household_with_ages_and_the_edit_link(api, staff, clock) -> None:  # noqa: ANN001
    clock.set(datetime(2026, 4, 1, 3, 0, tzinfo=UTC))
    case_id = open_case(api)
    api("caseworker").put(f"/api/cases/{case_id}/household", json={"members": [
        {"name": "山田 花子", "kana": "やまだ はなこ", "birth_date": "1948-03-10", "relation": "本人",
         "attributes": ["elderly"], "department": "choju-anshin"}]})
    page = staff("caseworker").get(f"/cases/{case_id}").get_data(as_text=True)
    assert 'id="household-title"' in page and "山田 花子" in page and "やまだ はなこ" in page
    assert "1948-03-10" in page and "（78歳）" in page and "高齢" in page and "長寿安心課" in page
    assert f'href="/cases/{case_id}/household"' in page
    assert "まだ判定されていません" in page


def test_adding_a_row_keeps_what_was_typed_and_saves_nothing(api, staff) -> None:  # noqa: ANN001
    case_id = open_case(api)
    client = staff("caseworker")
    page = client.get(f"/cases/{case_id}/household").get_data(as_text=True)
    assert 'name="m-0-name"' in page and 'name="m-1-name"' not in page
    r = save(client, case_id, row(0, name="山田 花子", relation="本人"), action="add")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and 'name="m-1-name"' in page and 'value="山田 花子"' in page
    assert api("caseworker").get(f"/api/cases/{case_id}/household").json == {"members": []}


def test_saving_replaces_the_household_skipping_empty_and_removed_rows(api, staff) -> None:  # noqa: ANN001
    case_id = open_case(api)
    client = staff("caseworker")
    client.get(f"/cases/{case_id}/household")
    r = save(client, case_id, row(0, name="山田 花子", kana="やまだ はなこ", relation="本人", birth_date="1948-03-10",
                                  sex="female", attributes=["elderly"], department="choju-anshin"),
             row(1, name="山田 一郎", relation="夫", remove="1"),
             row(2, name="山田 太郎", relation="子", attributes=["poverty"], phone="０６－１２３４－５６７８"),
             row(3))
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/cases/{case_id}#household-title")
    members = api("caseworker").get(f"/api/cases/{case_id}/household").json["members"]
    assert [(m["name"], m["relation"], m["attributes"]) for m in members] == [
        ("山田 花子", "本人", ["elderly"]), ("山田 太郎", "子", ["poverty"])]
    assert members[0]["department"] == "choju-anshin" and members[1]["department"] is None


def test_a_bad_row_is_shown_beside_its_field_with_the_input_kept(api, staff) -> None:  # noqa: ANN001
    case_id = open_case(api)
    client = staff("caseworker")
    client.get(f"/cases/{case_id}/household")
    # The first row is left empty (skipped): the error still lands on the row it was typed in.
    r = save(client, case_id, row(0), row(1, name="", kana="やまだ", relation="子"),
             row(2, name="山田 次郎", birth_date="2999-01-01"))
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    assert re.search(r'id="m1-name" name="m-1-name" aria-describedby="m1-name-error" aria-invalid="true"', page)
    assert re.search(r'id="m2-birth_date" name="m-2-birth_date" aria-describedby="m2-birth_date-error" '
                     r'aria-invalid="true"', page)
    assert 'href="#m1-name"' in page and 'value="やまだ"' in page and 'value="山田 次郎"' in page
    assert api("caseworker").get(f"/api/cases/{case_id}/household").json == {"members": []}


def test_an_outsider_gets_the_case_pages_404(api, staff) -> None:  # noqa: ANN001
    case_id = open_case(api)
    client = staff("outsider")
    nobody = "00000000-0000-0000-0000-000000000000"
    ghost = client.get(f"/cases/{nobody}/household").get_data(as_text=True)
    for r in (client.get(f"/cases/{case_id}/household"), save(client, case_id, row(0, name="x"))):
        # the page names its own address (the language switch returns to it), nothing else differs
        assert r.status_code == 404 and r.get_data(as_text=True).replace(case_id, nobody) == ghost


def test_the_decision_is_shown_with_its_column_in_words(api, staff) -> None:  # noqa: ANN001
    ref = api("caseworker")
    case_id = open_case(api)
    task = ref.get(f"/api/cases/{case_id}").json["open_tasks"][0]
    ref.post(f"/api/tasks/{task['id']}/complete", json={"data": {
        "multiple_targets": False, "all_targets_have_lead_department": True, "lead_department_can_handle_alone": True,
        "coordination_problem": True, "summary": "s", "consent": "given"}})
    page = staff("caseworker").get(f"/cases/{case_id}").get_data(as_text=True)
    assert 'data-result="consult_only"' in page and "対象外（連携調整の相談は可）" in page
    assert 'data-rule="Rule_consult_only"' in page and "第1列" in page
