"""A confirmation step (a plain task, a manual task or a user task with no form) in the
browser: its page shows the element's documentation and a 確認 button, passes axe, and
confirming it moves the case on."""

from __future__ import annotations

import pytest

from engine.settings import ROOT
from engine.workflow import specs
from tests.api.elements import diagram
from tests.ui.test_browser import (  # noqa: F401 - fixtures
    browser_page,
    check_page,
    chromium,
    say,
    server,
    shot,
    sign_in,
)

pytestmark = pytest.mark.browser


def test_a_confirmation_step_shows_its_documentation_and_a_confirm_button(
        browser_page, session_factory, env, clock, personas) -> None:  # noqa: ANN001, F811
    from playwright.sync_api import expect

    with session_factory() as s:
        specs.deploy(s, specs.Sources({"el_plain_task.bpmn": diagram("el_plain_task")}, {},
                                      specs.read_forms(ROOT / "forms")), env.org, clock.now())
    from engine.casework import cases
    with session_factory() as s:
        case = cases.start_case(s, env, s.get(type(personas.secretariat), personas.secretariat.id),
                                "el_plain_task", {}, "secretariat", clock.now())
        task_id = next(t.id for t in cases.case_open_tasks(s, case))
    page = browser_page
    sign_in(page, "kyosei.tanaka")
    page.goto(f"/tasks/{task_id}")
    expect(page.get_by_text("届いた書類がそろっているか確かめてください。")).to_be_visible()
    assert page.get_by_role("button", name=say("save_draft")).count() == 0
    check_page(page)
    shot(page, "confirmation-step")
    page.get_by_role("button", name=say("confirm"), exact=True).click()
    expect(page.get_by_text(say("completed_step").format(step="書類を確認する"))).to_be_visible()
