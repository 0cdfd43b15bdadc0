"""The case page says what the case waits for; administrators register and remove message
sources on a page that shows a new source's secret once."""

from __future__ import annotations

import re

from engine.casework import cases
from engine.models import Source
from tests.engine.messages_support import deploy_message_diagrams
from tests.ui.test_pages import text


def waiting_items(page: str) -> list[str]:
    block = re.search(r'<ul class="waiting" id="waiting">(.*?)</ul>', page, re.S)
    assert block, "no waiting list on the page"
    return [" ".join(re.sub(r"<[^>]+>", " ", item).split())
            for item in re.findall(r"<li[^>]*>(.*?)</li>", block.group(1), re.S)]


def test_case_page_shows_what_the_case_waits_for(staff, session, env, personas, clock, session_factory) -> None:  # noqa: ANN001
    deploy_message_diagrams(session_factory, env, clock)
    waiting_case = cases.receive_message(session, env, personas.secretariat, "test_referral", {},
                                         {"household_ref": "H-1"}, clock.now())
    task_case = cases.start_case(session, env, personas.caseworker, "multi_agency", {"summary": "相談"}, None, clock.now())
    client = staff("secretariat")
    page = text(client.get(f"/cases/{waiting_case.id}"))
    items = waiting_items(page)
    assert len(items) == 1 and items[0].startswith("メッセージ待ち 返信待ち")
    assert "メッセージを受信" in page and "test_referral" in page
    items = waiting_items(text(client.get(f"/cases/{task_case.id}")))
    assert len(items) == 1 and items[0].startswith("作業待ち")


def test_administrator_registers_a_source_and_sees_its_secret_once(staff, session) -> None:  # noqa: ANN001
    client = staff("admin")
    page = text(client.post("/admin/sources", {"name": "minsei-app", "process": "", "group": "secretariat"}))
    session.rollback()
    source = session.query(Source).filter_by(name="minsei-app").one()
    assert source.secret in page and "/webhooks/minsei-app" in page
    page = text(client.get("/admin/sources"))
    assert "minsei-app" in page and source.secret not in page
    bad = client.post("/admin/sources", {"name": "Not Valid"})
    assert bad.status_code == 422 and "a-z" in text(bad)
    assert client.post("/admin/sources/minsei-app/remove").status_code == 302
    session.rollback()
    assert session.query(Source).filter_by(name="minsei-app").count() == 0
