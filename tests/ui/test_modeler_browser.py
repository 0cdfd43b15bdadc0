"""The modeler in a real browser (Chromium, Playwright): a designer opens the six-step process, adds
a user task with a form in the secretariat lane, sets its time limit in the properties panel,
validates, test-runs and deploys it; a new case runs on the new version while a running case stays on
the old one, until it is previewed and migrated; the diff of the two versions lists the new task in
words. Every state of the page is
checked with axe-core, and screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.casework import cases
from engine.clock import FrozenClock
from engine.env import Env
from engine.models import Case
from engine.security import users
from tests.conftest import Personas
from tests.ui import test_browser as browser
from tests.ui.conftest import PASSWORD
from tests.ui.test_browser import check_page, shot, sign_in

pytestmark = pytest.mark.browser
# Validate and deploy run bpmnlint in node and the engine's checks: on a busy machine that is more
# than expect's default wait, so these waits for the server's answer are longer (no speed is asserted).
SERVER = {"timeout": 60_000}
# the browser, the served app and the page of the staff pages' browser tests
chromium, server, browser_page = browser.chromium, browser.server, browser.browser_page

ADD_FOLLOW_UP = """() => {
  const m = window.tsunaguModeler.modeler;
  const registry = m.get('elementRegistry'), modeling = m.get('modeling');
  const closure = registry.get('closure'), closed = registry.get('closed');
  modeling.removeConnection(registry.get('flow_closed'));
  const bo = m.get('bpmnFactory').create('bpmn:UserTask', {id: 'follow_up', name: '7. 終結後の確認'});
  const shape = m.get('elementFactory').createShape({type: 'bpmn:UserTask', businessObject: bo});
  modeling.createShape(shape, {x: closure.x + closure.width / 2, y: closure.y + closure.height + 90},
                       registry.get('Lane_secretariat'));
  modeling.connect(closure, registry.get('follow_up'));
  modeling.connect(registry.get('follow_up'), closed);
  m.get('selection').select(registry.get('follow_up'));
}"""


@pytest.fixture
def designer_name(session: Session, clock: FrozenClock) -> str:
    user = users.add_user(session, "sekkei.mori", ["secretariat"], ["designer"], clock.now(), "森 設計者")
    users.set_password(user, PASSWORD)
    session.commit()
    return user.name


def case_version(factory: sessionmaker[Session], case_id: str) -> int:
    with factory() as s:
        return s.get(Case, case_id).definition.version


def test_a_designer_adds_a_step_deploys_it_and_compares_the_versions(
        browser_page, designer_name: str, session_factory: sessionmaker[Session], env: Env,  # noqa: ANN001
        personas: Personas, clock: FrozenClock) -> None:
    from playwright.sync_api import expect

    with session_factory() as s:
        old_case = cases.start_case(s, env, s.get(type(personas.caseworker), personas.caseworker.id),
                                    "multi_agency", {"summary": "相談"}, None, clock.now()).id
    page = browser_page
    sign_in(page, designer_name)
    page.get_by_role("link", name="プロセス設計").click()
    expect(page.locator("body[data-modeler-ready='true']")).to_be_attached()
    check_page(page)  # the list, nothing open
    page.get_by_role("button", name="最新版を編集（多機関協働事業による支援の流れ）").click()
    expect(page.locator("#editor-status")).to_contain_text("multi_agency の版 1 を編集中です")
    expect(page.locator("#canvas [data-element-id='closure']")).to_be_attached()
    expect(page.locator("#dmn-section")).to_be_visible()
    expect(page.locator("#dmn-python")).to_contain_text("FEEL ではなく Python の式")

    page.evaluate(ADD_FOLLOW_UP)
    panel = page.locator("#properties")
    expect(panel.locator(".bio-properties-panel-header-label")).to_have_text("7. 終結後の確認")
    group = panel.get_by_text("つなぐの設定", exact=True)
    group.click()
    panel.get_by_label("入力フォーム").select_option("closure")
    due = panel.get_by_label("期限（ISO 8601 の期間、例：P14D）")
    due.fill("5 days")
    expect(panel.get_by_text("期間の形式ではありません（例：P3D、P2W、PT4H）")).to_be_visible()
    due.fill("P5D")
    expect(panel.get_by_text("期限：5日")).to_be_visible()
    check_page(page)  # the editor with the properties panel open
    shot(page, "modeler-properties")

    page.get_by_role("button", name="検証", exact=True).click()
    expect(page.locator("#editor-status")).to_have_text("検証しました：配置できます。", **SERVER)

    answers = {"intake": {"multiple_targets": False, "all_targets_have_lead_department": True,
                          "lead_department_can_handle_alone": True, "coordination_problem": False,
                          "summary": "テスト", "consent": "not_given"}}
    page.get_by_label("回答例（JSON：{\"ステップID\": {項目: 値}}）").fill(json.dumps(answers, ensure_ascii=False))
    page.get_by_role("button", name="テスト実行", exact=True).click()
    expect(page.locator("#run-result")).to_contain_text("止まった要素：advice", **SERVER)
    expect(page.locator("#canvas g.djs-element.tsunagu-path[data-element-id='screening']")).to_be_attached()
    expect(page.locator("#canvas g.djs-element.tsunagu-stop[data-element-id='advice']")).to_be_attached()
    check_page(page)
    shot(page, "modeler-test-run")

    page.get_by_label("配置のコメント（変更点）").fill("終結後の確認を追加")
    page.get_by_role("button", name="配置", exact=True).click()
    expect(page.locator("#editor-status")).to_have_text("multi_agency の版 2 を配置しました。", **SERVER)
    expect(page.get_by_label("多機関協働事業による支援の流れ の版")).to_contain_text("「終結後の確認を追加」")
    with session_factory() as s:
        new_case = cases.start_case(s, env, s.get(type(personas.caseworker), personas.caseworker.id),
                                    "multi_agency", {"summary": "相談"}, None, clock.now()).id
    assert (case_version(session_factory, old_case), case_version(session_factory, new_case)) == (1, 2)

    page.get_by_label("プロセス", exact=True).select_option("multi_agency")
    page.get_by_label("比較元の版", exact=True).select_option("1")
    page.get_by_label("比較先の版", exact=True).select_option("2")
    page.get_by_role("button", name="差分を表示").click()
    expect(page.locator("#diff-result")).to_contain_text("版 1 → 版 2", **SERVER)
    expect(page.locator("#diff-added-list")).to_contain_text("follow_up")
    expect(page.locator("#diff-to-canvas g.djs-element.diff-added[data-element-id='follow_up']")).to_be_attached()
    check_page(page)
    shot(page, "modeler-diff")

    page.get_by_role("button", name="移行できる案件を確認").click()
    expect(page.locator("#migrate-result")).to_have_text("版 1 → 版 2：移行できる 1 件、できない 0 件。", **SERVER)
    with session_factory() as s:
        old_number = s.get(Case, old_case).number
    expect(page.locator("#movable-list")).to_have_text(old_number)
    page.get_by_role("button", name="移行できる案件をすべて移行").click()
    expect(page.locator("#migrate-result")).to_have_text("1 件を移行しました。失敗 0 件。", **SERVER)
    assert case_version(session_factory, old_case) == 2
    check_page(page)

    page.get_by_label("フォーム", exact=True).select_option("intake")
    expect(page.locator("#form-preview")).to_contain_text("相談")
    check_page(page)
    shot(page, "modeler-forms")


def test_others_see_the_forbidden_page(browser_page) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    page = browser_page
    sign_in(page, "kyosei.tanaka")
    expect(page.get_by_role("link", name="プロセス設計")).to_have_count(0)
    page.goto("/modeler")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    check_page(page)
