"""The start pages (新規相談, 緊急対応の報告) require the summary: an empty or blank one shows the
error at the field, keeps what was typed, and opens no case."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine.models import Case


@pytest.mark.parametrize("kind", ["consultation", "emergency"])
@pytest.mark.parametrize("summary", ["", " \r\n\u3000 "])
def test_a_blank_summary_is_shown_at_the_field_and_opens_no_case(staff, session, kind: str, summary: str) -> None:  # noqa: ANN001
    page = staff("caseworker")
    r = page.post(f"/cases/new/{kind}", {"summary": summary})
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    assert 'id="start-summary-error"' in body and "概要を入力してください。" in body
    assert 'href="#start-summary"' in body  # the error summary links to the field
    assert 'aria-invalid="true"' in body and "start-summary-help start-summary-error" in body
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Case)) == 0


def test_the_summary_field_is_marked_required(staff) -> None:  # noqa: ANN001
    body = staff("caseworker").get("/cases/new/consultation").get_data(as_text=True)
    field = body[body.index('for="start-summary"'):body.index("</textarea>")]
    assert "必須" in field and "required" in field


def test_a_summary_opens_the_case(staff, session) -> None:  # noqa: ANN001
    r = staff("caseworker").post("/cases/new/consultation", {"summary": "母と息子の二人暮らし"})
    assert r.status_code == 302
    session.expire_all()
    assert session.scalar(select(Case.summary)) == "母と息子の二人暮らし"
