"""The supervisor's sections in a real browser: the queue with 要対応 and bulk reassignment, the
case page's repair card on a case in error, each passing axe-core's WCAG 2.1 A/AA rules in
Japanese and English, with screenshots."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from engine.casework import cases, escalation, writes
from engine.models import HumanTask, User
from engine.status import TaskState
from tests.engine.support import intake
from tests.ui.test_browser import browser_page, check_page, chromium, server, shot, sign_in, switch_language

__all__ = ["browser_page", "chromium", "server"]  # fixtures used by the tests below


def _seed(session, env, personas, clock) -> str:  # noqa: ANN001
    """Two cases at assessment past their limit, and a case in error. Returns the error case's id."""
    for summary in ("高齢の母と無職の息子の世帯", "ごみ屋敷の独居高齢者"):
        case = cases.start_case(session, env, session.get(User, personas.caseworker.id), "multi_agency",
                                {"summary": summary}, None, clock.now())
        task = session.scalar(select(HumanTask).where(HumanTask.case_id == case.id,
                                                      HumanTask.state == TaskState.OPEN))
        cases.complete_task(session, env, session.get(User, personas.caseworker.id), task.id, intake(), clock.now())
    # A case in error as the engine leaves one (engine.casework.writes.mark_error), on a process whose
    # diagram the case page draws.
    broken = cases.start_case(session, env, session.get(User, personas.caseworker.id), "multi_agency",
                              {"summary": "8050世帯"}, None, clock.now())
    writes.mark_error(session, broken.id, "ZeroDivisionError: division by zero", clock.now(), "screening")
    return broken.id


def test_supervisor_sections_pass_axe_in_both_languages(browser_page, session, session_factory, env, personas,  # noqa: ANN001
                                                        clock) -> None:
    from playwright.sync_api import expect

    broken = _seed(session, env, personas, clock)
    clock.advance(timedelta(days=15))
    escalation.escalate_due(session_factory, env, clock.now())
    page = browser_page
    sign_in(page, personas.supervisor.name)
    # both assessments are past their limits (the error case's intake went to the coordination lead)
    expect(page.locator("#escalations tbody tr")).to_have_count(2)
    check_page(page)
    shot(page, "queue-escalations-ja")

    # bulk reassignment: tick both, pick the member, submit
    for box in page.locator("input[name='task'][form='bulk-assign']").all()[:2]:
        box.check()
    page.get_by_label("割り当て先", exact=True).select_option("kyosei.tanaka")
    page.get_by_role("button", name="選択した作業を割り当てる").click()
    expect(page.locator(".flash--success")).to_contain_text("2件の作業を")
    check_page(page)

    page.goto(f"/cases/{broken}")
    expect(page.locator("#repair")).to_be_visible()
    check_page(page)
    shot(page, "case-repair-ja")
    switch_language(page, "en")
    check_page(page, "en")
    shot(page, "case-repair-en")
    page.goto("/")
    check_page(page, "en")
    shot(page, "queue-escalations-en")
    page.get_by_role("button", name="Mark as handled").first.click()
    expect(page.locator("#escalations tbody tr")).to_have_count(1)
    check_page(page, "en")
