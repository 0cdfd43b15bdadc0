"""The print view in Chromium: axe-clean on screen, and as printed (print media, A4) without the
site's header and navigation, with no resident's name in its title; a screenshot and a PDF go to
test-artifacts/."""

from __future__ import annotations

from datetime import UTC, date, datetime

from engine.casework import cases
from engine.models import HouseholdMember, User
from tests.engine.support import intake
from tests.ui.test_browser import SHOTS, browser_page, check_page, chromium, server, shot, sign_in

__all__ = ["browser_page", "chromium", "server"]  # fixtures used by the tests below


def _case_at_monitoring(session, env, personas, clock) -> str:  # noqa: ANN001
    ref, sec = session.get(User, personas.caseworker.id), session.get(User, personas.secretariat.id)
    case = cases.start_case(session, env, ref, "multi_agency", {"summary": "祖母と孫の二人暮らし。祖母は要介護、孫は不登校。"},
                            None, clock.now())

    def step(actor, data) -> None:  # noqa: ANN001
        (task,) = cases.case_open_tasks(session, case)
        cases.complete_task(session, env, actor, task.id, data, clock.now())

    step(ref, intake(consent="given", applied=True, concerns=["care", "withdrawal"], main_concern="care"))
    step(sec, {"members": ["chiiki-kyosei", "choju-anshin"], "assessment": "祖母の介護と孫の不登校"})
    step(sec, {"issues": "祖母の介護負担と孫の不登校", "policy": "長寿安心課が祖母を、こども相談課が孫を支える",
               "monitoring_interval": "P1M", "goal_long": "祖母と孫が安心して暮らし続ける",
               "goal_short": "介護サービスの利用開始と週1回の登校", "services": ["self_reliance"]})
    step(sec, {"held_on": "2026-04-20", "participants": ["choju-anshin", "kodomo-sodan"],
               "roles": [{"group": "choju-anshin", "role": "祖母の介護サービスの調整"},
                         {"group": "kodomo-sodan", "role": "孫の登校の見守りと学校との連絡"}],
               "decided_policy": "長寿安心課が祖母を、こども相談課と学校が孫を支える",
               "minutes": "学校と月1回連絡を取る。次回は6月に開催。"})
    session.add_all([
        HouseholdMember(case_id=case.id, position=0, name="豊中ハナ", kana="とよなかはな", birth_date=date(1948, 5, 1),
                        sex="female", relation="本人", attributes=["elderly"], department_id="choju-anshin",
                        updated_at=datetime(2026, 4, 1, tzinfo=UTC)),
        HouseholdMember(case_id=case.id, position=1, name="豊中タロウ", kana="とよなかたろう", birth_date=date(2014, 9, 3),
                        sex="male", relation="孫", attributes=["child"], department_id="kodomo-sodan",
                        updated_at=datetime(2026, 4, 1, tzinfo=UTC))])
    session.commit()
    return case.id


def test_print_view_on_screen_and_on_a4(browser_page, session, env, personas, clock) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    case_id = _case_at_monitoring(session, env, personas, clock)
    page = browser_page
    sign_in(page, personas.secretariat.name)
    page.goto(f"/cases/{case_id}")
    page.get_by_role("link", name="印刷用の記録").click()
    expect(page.get_by_role("heading", level=1, name="案件の記録（印刷用）")).to_be_visible()
    assert page.url.endswith(f"/cases/{case_id}/print")
    title = page.title()
    assert title.startswith("案件の記録（印刷用）") and "豊中" not in title and "とよなか" not in title
    expect(page.get_by_role("button", name="印刷する")).to_be_visible()
    check_page(page)
    shot(page, "case-print-screen")

    page.emulate_media(media="print")
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.get_by_role("button", name="印刷する")).to_be_hidden()
    expect(page.locator(".print-table--roles").get_by_role("cell", name="孫の登校の見守りと学校との連絡")).to_be_visible()
    check_page(page)
    shot(page, "case-print-a4")
    pdf = page.pdf(format="A4", path=str(SHOTS / "case-print.pdf"))
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages") >= 2
