"""The case list page (/cases): every case one may see, searched by kana whatever its script,
filtered, paged, and no query in the page's title."""

from __future__ import annotations

import re

from tests.api.test_case_search import add_household
from tests.ui.test_pages import start, text
from web.ui import case_list


def rows(page: str) -> list[str]:
    return re.findall(r'<tr data-case-id="([^"]+)"', page)


def test_the_case_list_finds_a_household_member_by_kana_and_keeps_the_query_out_of_the_title(
        staff, session_factory, clock) -> None:  # noqa: ANN001
    client = staff("caseworker")
    found = start(client, "高齢の母と不登校の子")
    start(client, "別の世帯")
    add_household(session_factory, clock, found, [("山田 太郎", "ヤマダ タロウ")])
    r = client.get("/cases", query_string={"q": "やまだ"})
    page = text(r)
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert '<meta charset="utf-8">' in page
    assert rows(page) == [found]
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert "やまだ" not in title and "案件検索" in title
    assert 'value="やまだ"' in page  # the form keeps what was typed
    assert "対応中" in page and "1. 相談・調整" in page  # status in Japanese, the current step
    assert 'href="/cases"' in text(client.get("/"))  # in the navigation


def test_the_case_list_filters_by_status_and_says_when_nothing_matches(staff) -> None:  # noqa: ANN001
    client = staff("caseworker")
    start(client, "相談")
    page = text(client.get("/cases", query_string={"status": "completed"}))
    assert rows(page) == [] and "条件に合う案件はありません" in page
    assert len(rows(text(client.get("/cases", query_string={"status": "active"})))) == 1


def test_a_bad_filter_is_explained_on_the_page(staff) -> None:  # noqa: ANN001
    r = staff("caseworker").get("/cases", query_string={"status": "closed"})
    assert r.status_code == 422 and "状態" in text(r) and rows(text(r)) == []


def test_the_case_list_pages_with_links(staff, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(case_list, "PAGE_SIZE", 2)
    client = staff("caseworker")
    made = [start(client, f"世帯 {n}") for n in ("あ", "い", "う")]
    first = text(client.get("/cases", query_string={"q": "世帯"}))
    assert len(rows(first)) == 2 and "3 件中 1〜2 件目" in first
    nxt = re.search(r'<a class="button" rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert "q=" in nxt and "page=2" in nxt
    second = text(client.get(nxt))
    assert set(rows(first)) | set(rows(second)) == set(made) and 'rel="prev"' in second


def test_another_agency_does_not_see_the_case_in_the_list(staff) -> None:  # noqa: ANN001
    start(staff("caseworker"), "高齢の母")
    assert rows(text(staff("outsider").get("/cases", query_string={"q": "高齢"}))) == []
    assert len(rows(text(staff("secretariat").get("/cases", query_string={"q": "高齢"})))) == 1
