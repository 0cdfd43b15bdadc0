"""The scheme's pages with a signed-in browser-like client: a window records a consultation
(and its errors are shown, nothing stored), the list, a consultation day with a walk-in and
its report, the places register kept by the secretariat, and the statistics page and CSV
for the roles that may read them (403 for the others)."""

from __future__ import annotations

from engine.models import Consultation


def test_a_window_records_a_consultation_and_sees_it_listed(staff, session) -> None:  # noqa: ANN001
    ref = staff("caseworker")
    page = ref.get("/consultations/new")
    assert page.status_code == 200 and "制度の質問" in page.get_data(as_text=True)
    bad = ref.post("/consultations/new", {"received_on": "2026-03-31", "content": "hardship"})
    assert bad.status_code == 422 and "response" in bad.get_data(as_text=True)
    assert session.query(Consultation).count() == 0
    ok = ref.post("/consultations/new", {"received_on": "2026-03-31", "content": "hardship",
                                         "response": "kurashi_saiken", "channel": "phone"})
    assert ok.status_code == 302
    listing = ref.get("/consultations").get_data(as_text=True)
    assert "くらし再建紹介" in listing and "2026-03-31" in listing
    opened = ref.post("/consultations/new", {"received_on": "2026-03-31", "content": "other", "response": "information",
                                             "open_case": "1"})
    assert opened.status_code == 302 and "/cases/" in opened.headers["Location"]


def test_a_consultation_day_takes_walk_ins_and_reports_them(staff) -> None:  # noqa: ANN001
    sec, ref = staff("secretariat"), staff("caseworker")
    sec.get("/events")
    made = sec.post("/events", {"title": "くらしを守る総合相談会", "held_on": "2026-03-20", "place": "市役所",
                                "groups": ["hokatsu-center", "kurashi-shien"], "professionals": ["lawyer"]})
    assert made.status_code == 302
    url = made.headers["Location"]
    ref.get(url)
    assert ref.post(url, {"kinds": ["hardship", "housing"], "complex": "1"}).status_code == 302
    assert ref.post(url, {"kinds": ["work"]}).status_code == 302
    assert "相談来所者 2人（複合課題 1人）、困窮 1件・仕事 1件・住宅 1件" in ref.get(url).get_data(as_text=True)
    assert ref.post(url, {"kinds": []}).status_code == 422


def test_places_are_kept_by_the_secretariat(staff) -> None:  # noqa: ANN001
    sec, ref = staff("secretariat"), staff("caseworker")
    sec.get("/places")
    assert sec.post("/places", {"name": "ふらっとカフェ", "kind": "community", "capacity": "8"}).status_code == 302
    assert "ふらっとカフェ" in ref.get("/places").get_data(as_text=True)
    ref.get("/places")
    assert ref.post("/places", {"name": "x", "kind": "community"}).status_code == 403


def test_statistics_page_and_csv_for_the_roles_only(staff) -> None:  # noqa: ANN001
    sup, ref = staff("supervisor"), staff("caseworker")
    page = sup.get("/statistics?fiscal_year=2025")
    assert page.status_code == 200 and "build/statistics.js" in page.get_data(as_text=True)
    csv = sup.get("/statistics.csv?fiscal_year=2025")
    assert csv.status_code == 200 and csv.data.startswith("\ufeff".encode())
    assert ref.get("/statistics").status_code == 403
    assert ref.get("/statistics.csv").status_code == 403
