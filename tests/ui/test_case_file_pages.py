"""The case file on the case page: a support record added through its form shows in the list
and in the timeline, in time order, marked as a record; its author corrects it within 24 hours
(the earlier text shown), not after; a document is attached, downloaded and removed with a
reason; a refusal is told on the case page; an outsider gets the case's 404 page."""

from __future__ import annotations

import html
import io
import re
from datetime import timedelta

from sqlalchemy import func, select

from engine.models import CaseAttachment, CaseNote
from tests.api.test_attachments import DOCX, EXE, PDF


def _case(api) -> str:  # noqa: ANN001
    return api("caseworker").post("/api/cases", json={"process": "multi_agency",
                                                      "data": {"summary": "家計の相談"}}).json["id"]


def _text(r) -> str:  # noqa: ANN001
    return html.unescape(r.get_data(as_text=True))


def test_a_note_added_on_the_page_shows_in_the_list_and_the_timeline(api, staff, clock) -> None:  # noqa: ANN001
    case_id = _case(api)
    client = staff("caseworker")
    yesterday = (clock.now() + timedelta(hours=9) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    r = client.post(f"/cases/{case_id}/notes", {"kind": "visit", "text": "自宅を訪問し、母と面談した。",
                                               "occurred_at": yesterday})
    assert r.status_code == 302 and r.headers["Location"].endswith("#notes")
    page = _text(client.get(f"/cases/{case_id}"))
    assert "支援経過を記録しました。" in page
    notes = page[page.index('id="notes-list"'):]
    assert "訪問" in notes and "自宅を訪問し、母と面談した。" in notes
    timeline = page[page.index('id="timeline"'):]
    items = re.findall(r'data-kind="([a-z_]+)"', timeline[:timeline.index("</ol>")])
    # The visit a day ago is older than the case (opened now): it comes after the case's start.
    assert items[-1] == "note" and "case_started" in items
    assert "支援経過・訪問" in timeline


def test_the_author_corrects_a_note_within_24_hours_only(api, staff, clock, session) -> None:  # noqa: ANN001
    case_id = _case(api)
    note = api("caseworker").post(f"/api/cases/{case_id}/notes", json={"kind": "phone", "text": "最初の記録"}).json
    client = staff("caseworker")
    page = _text(client.get(f"/cases/{case_id}"))
    assert f'/cases/{case_id}/notes/{note["id"]}/edit' in page
    r = client.post(f"/cases/{case_id}/notes/{note['id']}/edit", {"text": "直した記録"})
    assert r.status_code == 302
    page = _text(client.get(f"/cases/{case_id}"))
    assert "直した記録" in page and "修正前の記録" in page and "最初の記録" in page
    # Another reader sees no correction form.
    assert f'/notes/{note["id"]}/edit' not in _text(staff("secretariat").get(f"/cases/{case_id}"))
    clock.advance(timedelta(hours=25))
    client = staff("caseworker")  # a page session lasts a working day: signed in anew
    assert f'/notes/{note["id"]}/edit' not in _text(client.get(f"/cases/{case_id}"))
    client.post(f"/cases/{case_id}/notes/{note['id']}/edit", {"text": "遅い修正"})
    page = _text(client.get(f"/cases/{case_id}"))
    assert "記録の修正は記録から 24 時間以内に限られます" in page and "遅い修正" not in page


def test_a_bad_note_is_told_on_the_case_page_and_keeps_what_was_typed(api, staff, session) -> None:  # noqa: ANN001
    case_id = _case(api)
    client = staff("caseworker")
    r = client.post(f"/cases/{case_id}/notes", {"kind": "visit", "text": "  "})
    assert r.status_code == 422 and "記録の内容を入力してください" in _text(r)
    r = client.post(f"/cases/{case_id}/notes", {"kind": "phone", "text": "母から電話。来週訪問の約束。",
                                               "occurred_at": "昨日"})
    page = _text(r)
    assert r.status_code == 422 and "日時を正しく入力してください。" in page
    form = page[page.index('class="stack note-form"'):]
    form = form[:form.index("</form>")]
    assert ">母から電話。来週訪問の約束。</textarea>" in form
    assert '<option value="phone" selected>' in form and 'value="昨日"' in form
    # Told once: the next view of the case shows neither the refusal nor the draft.
    again = _text(client.get(f"/cases/{case_id}"))
    assert "日時を正しく入力してください。" not in again and "来週訪問の約束" not in again
    assert session.scalar(select(func.count()).select_from(CaseNote)) == 0


def test_a_document_is_attached_downloaded_and_removed_on_the_page(api, staff, session, settings) -> None:  # noqa: ANN001
    case_id = _case(api)
    client = staff("caseworker")
    r = client.post(f"/cases/{case_id}/attachments", {"file": [(io.BytesIO(DOCX), "支援計画.docx")]},
                    content_type="multipart/form-data")
    assert r.status_code == 302 and r.headers["Location"].endswith("#attachments"), _text(r)[:2000]
    page = _text(client.get(f"/cases/{case_id}"))
    assert "書類を添付しました。" in page and "支援計画.docx" in page
    link = re.search(rf'href="(/cases/{case_id}/attachments/[0-9a-f-]+)" download', page).group(1)
    download = client.get(link)
    assert download.status_code == 200 and download.data == DOCX
    assert download.headers["Content-Disposition"].startswith("attachment;")
    r = client.post(f"{link}/remove", {"reason": "古い版だった"})
    assert r.status_code == 302
    page = _text(client.get(f"/cases/{case_id}"))
    assert "添付書類を削除しました。" in page and "削除済み" in page and "古い版だった" in page
    assert f'href="{link}"' not in page


def test_a_refused_document_is_told_on_the_case_page(api, staff, session, settings) -> None:  # noqa: ANN001
    case_id = _case(api)
    client = staff("caseworker")
    client.post(f"/cases/{case_id}/attachments", {"file": [(io.BytesIO(EXE), "請求書.pdf")]},
                content_type="multipart/form-data")
    assert "この種類のファイルは添付できません" in _text(client.get(f"/cases/{case_id}"))
    client.post(f"/cases/{case_id}/attachments", {}, content_type="multipart/form-data")
    assert "ファイルを選んでください" in _text(client.get(f"/cases/{case_id}"))
    assert session.scalar(select(func.count()).select_from(CaseAttachment)) == 0


def test_an_upload_over_the_limit_is_told_with_the_limit(api, staff, session, settings, app) -> None:  # noqa: ANN001
    case_id = _case(api)
    client = staff("caseworker")
    big = PDF + b"0" * (settings.attachment_max_bytes + 100 * 1024)
    r = client.post(f"/cases/{case_id}/attachments", {"file": [(io.BytesIO(big), "大きい.pdf")]},
                    content_type="multipart/form-data")
    assert r.status_code == 302
    assert "ファイルが大きすぎます（10 MB まで）。" in _text(client.get(f"/cases/{case_id}"))
    assert session.scalar(select(func.count()).select_from(CaseAttachment)) == 0


def test_an_outsider_gets_the_cases_404_page_on_the_case_file(api, staff) -> None:  # noqa: ANN001
    case_id = _case(api)
    ref = api("caseworker")
    note = ref.post(f"/api/cases/{case_id}/notes", json={"kind": "visit", "text": "記録"}).json
    doc = ref.client.post(f"/api/cases/{case_id}/attachments", headers=ref.headers,
                          data={"file": [(io.BytesIO(PDF), "a.pdf")]}, content_type="multipart/form-data").json
    client = staff("outsider")
    answers = [client.post(f"/cases/{case_id}/notes", {"kind": "visit", "text": "覗き見"}),
               client.post(f"/cases/{case_id}/notes/{note['id']}/edit", {"text": "改ざん"}),
               client.post(f"/cases/{case_id}/attachments", {"file": [(io.BytesIO(PDF), "b.pdf")]},
                           content_type="multipart/form-data"),
               client.get(f"/cases/{case_id}/attachments/{doc['id']}"),
               client.post(f"/cases/{case_id}/attachments/{doc['id']}/remove", {"reason": "x"})]
    assert [r.status_code for r in answers] == [404] * 5
    assert all("ページが見つかりません" in _text(r) for r in answers)
