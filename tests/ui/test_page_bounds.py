"""Absurd input to the staff pages: ids and page numbers beyond any bound, dates at the end of
the calendar, NUL characters. Each gets an error page (or is clamped), never a 500."""

from __future__ import annotations

import pytest

from engine.workflow.limits import MAX_INT


@pytest.mark.parametrize("token_id", [str(MAX_INT + 1), "1911991875930310382786183168", "9" * 5000])
def test_revoking_a_token_id_beyond_any_id_is_refused(staff, token_id: str) -> None:  # noqa: ANN001
    page = staff("caseworker")
    r = page.post(f"/account/tokens/{token_id}/revoke")
    assert r.status_code == 422, r.status_code


@pytest.mark.parametrize("url", ["/sessions/{}/end", "/admin/webhooks/{}", "/admin/webhooks/{}/ping",
                                 "/admin/webhooks/{}/delete"])
@pytest.mark.parametrize("big", [str(MAX_INT + 1), "9" * 5000])
def test_session_and_webhook_ids_beyond_any_id_are_refused(staff, url: str, big: str) -> None:  # noqa: ANN001
    page = staff("admin")
    path = url.format(big)
    r = page.get(path) if url == "/admin/webhooks/{}" else page.post(path)
    assert r.status_code == 422, (path, r.status_code)


def test_a_page_number_beyond_any_page_shows_the_last_one(staff) -> None:  # noqa: ANN001
    page = staff("secretariat")
    assert page.get("/?page=99999999999999999999999999").status_code == 200
    assert page.get("/?page=-5").status_code == 200


@pytest.mark.parametrize("query", ["until=9999-12-31", "since=0001-01-01", "since=99999-01-01"])
def test_audit_dates_at_the_ends_of_the_calendar_are_refused(staff, query: str) -> None:  # noqa: ANN001
    page = staff("admin")
    r = page.get(f"/admin/audit?{query}")
    assert r.status_code in (200, 422), r.status_code
    assert page.get(f"/admin/audit.csv?{query}").status_code in (400, 422)


def test_nul_characters_get_an_error_page(staff) -> None:  # noqa: ANN001
    page = staff("caseworker")
    assert page.get("/cases/%00").status_code == 404
    assert page.get("/?q=%00").status_code == 400
    assert page.post("/lang", {"lang": "\x00"}).status_code == 400
