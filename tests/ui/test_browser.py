"""The staff pages in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright.

A real server runs in a thread on the test app, with the test's FrozenClock, so the test moves
time forward and runs the timer sweep itself. Nothing sleeps: every wait is on a condition.
Screenshots of the queue, a task form and a case page go to test-artifacts/screenshots/.

Every page a test reaches is checked with axe-core (WCAG 2.1 A and AA, the level JIS X 8341-3
asks of public bodies) by `check_page`, and every walk fails on a console error or a failed
sub-resource. axe-core comes from npm (package.json's devDependencies) and is evaluated in the
page by the test: it is never served by the product.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from engine.casework.timers import fire_due
from engine.settings import ROOT
from tests.ui.conftest import PASSWORD

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("TSUNAGU_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "test-artifacts" / "screenshots"
BPMN_JS = ROOT / "node_modules" / "bpmn-js" / "dist" / "bpmn-navigated-viewer.production.min.js"
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--lang=ja-JP"]
TIMEOUT_MS = 15_000


def _missing() -> list[str]:
    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("Playwright for Python is not installed (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists():
        missing.append(f"{CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk)")
    if not BPMN_JS.exists():
        missing.append("bpmn-js is not installed (npm ci)")
    if not AXE_JS.exists():
        missing.append("axe-core is not installed (npm ci)")
    return missing


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    missing = _missing()
    if missing:
        message = "browser tests need: " + "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message + " — CI must install them (.ci/run)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def server(app, staff) -> Iterator[str]:  # noqa: ANN001
    """The test app served on 127.0.0.1 (a free port) in a thread; personas have passwords."""
    from werkzeug.serving import make_server

    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="ui-test-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=10)
    httpd.server_close()


@pytest.fixture
def browser_page(chromium, server):  # noqa: ANN001, ANN201
    context = chromium.new_context(viewport={"width": 1366, "height": 900}, locale="ja-JP", base_url=server)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    console: list[tuple[str, str]] = []
    failed_pages: set[str] = set()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: console.append((msg.text, msg.location.get("url", "")))
            if msg.type == "error" else None)

    def on_response(response) -> None:  # noqa: ANN001
        if response.status < 400:
            return
        if response.request.resource_type == "document":
            failed_pages.add(response.url)  # a page's own status (404 page, form errors) is the test's to assert
        else:
            errors.append(f"{response.status} {response.request.resource_type} {response.url}")

    page.on("response", on_response)
    yield page
    context.close()
    # The browser logs every 4xx/5xx as a console error, the page's own included; the favicon's does
    # not come as a response event, so it is seen here.
    errors += [f"console: {text} ({url})" for text, url in console
               if not (url in failed_pages and text.startswith("Failed to load resource"))]
    assert errors == [], f"errors on the pages: {errors}"


@cache
def _axe_source() -> str:
    return AXE_JS.read_text(encoding="utf-8")


def check_page(page, lang: str = "ja") -> None:  # noqa: ANN001
    """Fail on any WCAG 2.1 A/AA violation axe-core finds in the page as it is now, or on a head that
    does not declare UTF-8 and the page's language."""
    from playwright.sync_api import expect

    expect(page.locator("html")).to_have_attribute("lang", lang)
    assert page.locator('head > meta[charset="utf-8"]').count() == 1, page.url
    assert page.evaluate("document.characterSet") == "UTF-8", page.url
    if page.locator("#diagram").count():  # the diagram is drawn after load: check it drawn
        expect(page.locator("#diagram[data-ready='true']")).to_be_attached()
    # page.evaluate is not subject to the page's Content-Security-Policy (script-src 'self'), so
    # the product's CSP stays on while axe runs
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    violations = page.evaluate(
        """tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})
             .then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                                targets: v.nodes.map(n => n.target.join(' '))})))""",
        WCAG21_AA)
    report = "\n".join(f"  {v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["targets"])
                       for v in violations)
    assert not violations, f"axe-core: WCAG 2.1 AA violations on {page.url}:\n{report}"


def endpoint_of(app, page) -> str:  # noqa: ANN001
    """The Flask endpoint of the page the browser shows (the error page counts as the page asked for)."""
    return app.url_map.bind("localhost").match(urlsplit(page.url).path, method="GET")[0]


def shot(page, name: str) -> None:  # noqa: ANN001
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def say(key: str, lang: str = "ja") -> str:
    from web.ui.i18n import message

    return message(key, lang)


def sign_in(page, name: str, lang: str = "ja") -> None:  # noqa: ANN001
    """Sign in through the sign-in page, shown in `lang`."""
    from playwright.sync_api import expect

    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    label(page, say("username", lang)).fill(name)
    label(page, say("password", lang)).fill(PASSWORD)
    page.get_by_role("button", name=say("sign_in", lang), exact=True).click()
    expect(page.get_by_role("heading", level=1, name=say("queue_title", lang))).to_be_visible()


def sign_out(page) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    page.get_by_role("button", name="ログアウト").click()
    expect(page.get_by_role("heading", name="職員ログイン")).to_be_visible()


def marks(page, kind: str) -> set[str]:  # noqa: ANN001
    """Element ids of the diagram that bpmn-js marked with `tsu-<kind>`."""
    from playwright.sync_api import expect

    expect(page.locator("#diagram[data-ready='true']")).to_be_attached()
    return set(page.locator(f"#diagram g.djs-element.tsu-{kind}").evaluate_all(
        "els => els.map(e => e.getAttribute('data-element-id'))"))


def label(page, text: str):  # noqa: ANN001, ANN201
    """The control labelled exactly `text` (the label may end with the 必須 badge)."""
    return page.get_by_label(re.compile("^" + re.escape(text) + "( 必須)?$"))


def group(page, legend: str):  # noqa: ANN001, ANN201
    return page.get_by_role("group", name=re.compile("^" + re.escape(legend) + "( 必須)?$"))


def open_case_task(page, step_name: str) -> None:  # noqa: ANN001
    """On the case page, open the open task called `step_name`."""
    item = page.locator(".task-list__item", has_text=step_name)
    item.get_by_role("link", name="作業する").click()
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", level=1, name=step_name)).to_be_visible()


def complete(page) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    page.get_by_role("button", name="完了して次へ進む").click()
    expect(page.locator(".flash--success")).to_contain_text("を完了しました")


ELIGIBLE = {"multiple_targets": True, "all_targets_have_lead_department": False,
            "lead_department_can_handle_alone": False, "coordination_problem": True, "consent": "unknown"}
BACKLOG = ["50歳男性、親の他界後ひとり暮らし。公共料金の滞納あり、ひきこもりがち。",
           "30歳女性（精神疾患の疑い、受診なし）、認知症の親、不登校がちの子と同居。支援を拒否。",
           "外国籍の母子世帯。日本語での手続きが難しく、家賃を滞納している。"]


def seed_backlog(session, env, personas, clock) -> None:  # noqa: ANN001
    """Other cases already waiting for the secretariat (through the domain functions), some overdue."""
    from engine.casework import cases

    for i, summary in enumerate(BACKLOG):
        case = cases.start_case(session, env, personas.caseworker, "multi_agency", {"summary": summary}, None,
                                clock.now())
        (task,) = cases.case_open_tasks(session, case)
        cases.complete_task(session, env, personas.caseworker, task.id, {**ELIGIBLE, "summary": summary}, clock.now())
        if i == 1:
            (task,) = cases.case_open_tasks(session, case)
            cases.claim_task(session, env, personas.supervisor, task.id, clock.now())
        clock.advance(days=8)  # an assessment is due in 14 days: the first two are overdue by the end


def test_consultation_walks_all_six_steps_in_the_browser(browser_page, clock, session_factory, env, session,
                                                         personas) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    seed_backlog(session, env, personas, clock)
    page = browser_page
    # --- the referring caseworker opens a consultation and fills in step 1
    sign_in(page, "hokatsu.sato")
    page.get_by_role("link", name="新規相談").click()
    check_page(page)
    label(page, "概要").fill("80代の祖母と小学生の孫の二人暮らし。平日昼間に孫が在宅している。")
    page.get_by_role("button", name="登録する").click()
    expect(page.locator(".flash--success")).to_contain_text("を登録しました")
    number = re.search(r"MA-\d{4}-\d{5}", page.locator("h1").inner_text()).group(0)
    assert marks(page, "current") == {"intake"}
    check_page(page)
    open_case_task(page, "1. 相談・調整")
    check_page(page)
    for legend, answer in (("支援対象者が複数", "はい"), ("全員に担当部局がある", "はい"),
                           ("担当部局のみで対応可能", "いいえ"), ("関係機関・部局の連携調整に課題がある", "いいえ")):
        group(page, legend).get_by_label(answer, exact=True).check()
    expect(label(page, "相談の概要")).to_have_value(re.compile("祖母と小学生の孫"))
    group(page, "本人同意").get_by_label("同意あり").check()
    complete(page)
    sign_out(page)

    # --- the secretariat finds the assessment in the queue and walks steps 2-6
    sign_in(page, "kyosei.tanaka")
    row = page.locator("tr", has_text=number)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("2. アセスメント")
    expect(page.locator("tr.is-overdue")).to_have_count(2)
    expect(page.locator("tbody tr").first).to_have_class(re.compile("is-overdue"))  # by due date: overdue first
    shot(page, "queue")
    check_page(page)
    row.get_by_role("button", name=re.compile("担当する")).click()
    expect(page.locator(".flash--success")).to_contain_text("担当しました")
    expect(page.locator("tr", has_text=number)).to_contain_text("田中 一郎")
    page.locator("tr", has_text=number).get_by_role("link", name="2. アセスメント").click()

    # step 2: assessment (multiple groups as checkboxes, long text)
    expect(page.locator(".task-aside")).to_contain_text("1. 相談・調整")
    check_page(page)
    expect(page.locator(".task-aside")).to_contain_text("同意あり")
    members = group(page, "参集した事務局メンバー")
    members.get_by_label("長寿安心課").check()
    members.get_by_label("こども相談課").check()
    label(page, "アセスメント内容").fill("祖母の介護負担と孫の不登校傾向が重なっている。")
    complete(page)
    assert {"intake", "assessment"} <= marks(page, "done")
    assert marks(page, "current") == {"plan"}

    # step 3: plan, with a short monitoring interval through the duration picker
    open_case_task(page, "3. 課題整理・支援方針の作成")
    check_page(page)
    label(page, "課題整理").fill("介護負担・不登校・親の所在不明")
    label(page, "支援方針").fill("長寿安心課とこども相談課が連携して見守る。")
    duration = group(page, "モニタリング間隔")
    duration.get_by_label("数", exact=True).fill("2")
    duration.get_by_label("単位").select_option("D")
    expect(duration.locator("output")).to_have_text("P2D")
    check_page(page)  # with the duration picker filled in
    complete(page)

    # step 4: support meeting, with the roles table (rows added in the page)
    open_case_task(page, "4. 支援会議（支援方針と役割分担の決定）")
    label(page, "開催日").fill("2026-04-01")
    participants = group(page, "参加機関")
    participants.get_by_label("長寿安心課").check()
    participants.get_by_label("こども相談課").check()
    page.locator("#f-roles-0-group").select_option("choju-anshin")
    page.locator("#f-roles-0-role").fill("介護サービスの調整")
    page.get_by_role("button", name="行を追加").click()
    page.locator("#f-roles-1-group").select_option("kodomo-sodan")
    page.locator("#f-roles-1-role").fill("学校との連絡・家庭訪問")
    shot(page, "task-form")
    check_page(page)  # with a row added to the roles table
    complete(page)
    assert {"intake", "assessment", "plan", "meeting"} <= marks(page, "done")
    assert marks(page, "current") == {"monitoring_due"}
    expect(page.locator("#schedule")).to_contain_text("モニタリング期日")
    due = clock.now() + timedelta(days=2)
    expect(page.locator("#schedule time")).to_have_attribute("datetime", due.isoformat())
    expect(page.locator(".task-list__item")).to_have_count(0)
    shot(page, "case")
    check_page(page)
    page.locator("#diagram").screenshot(path=str(SHOTS / "case-diagram.png"))

    # --- time passes: the sweep fires the timer and the monitoring task shows up in the queue
    clock.advance(days=2, minutes=1)
    assert fire_due(session_factory, env, clock.now()) == 1
    page.goto("/")  # two days later the sign-in has expired (12 hours at most): sign in again
    sign_in(page, "kyosei.tanaka")
    row = page.locator("tr", has_text=number)
    expect(row).to_contain_text("5. モニタリング")
    row.get_by_role("link", name="5. モニタリング").click()
    check_page(page)

    # step 5: monitoring → close
    group(page, "次の対応").get_by_label("終結へ").check()
    label(page, "支援の状況").fill("見守り体制が定着した。")
    complete(page)
    # step 6: closure
    open_case_task(page, "6. 終結（終結時の評価）")
    check_page(page)
    label(page, "終結時の評価").fill("支援方針どおり、介護サービスと学校の連携が定着した。")
    group(page, "終結の理由").get_by_label("支援が定着").check()
    complete(page)

    # --- the case page: closed, every step marked done, the timeline readable
    expect(page.locator(".status")).to_have_text("終結")
    done = marks(page, "done")
    assert {"intake", "assessment", "plan", "meeting", "monitoring_due", "monitoring", "closure"} <= done
    assert marks(page, "current") == set()
    timeline = page.locator("#timeline")
    completed = timeline.locator("[data-kind='task_completed']")
    expect(completed).to_have_count(6)
    steps = completed.evaluate_all("els => els.map(e => e.dataset.step)")
    assert steps == ["closure", "monitoring", "meeting", "plan", "assessment", "intake"]  # newest first
    expect(timeline.locator("[data-kind='timer_fired']")).to_have_count(1)
    expect(timeline.locator("[data-kind='case_completed']")).to_have_count(1)
    intake = timeline.locator("[data-kind='task_completed'][data-step='intake']")
    intake.get_by_text("入力内容を表示").click()
    expect(intake).to_contain_text("本人同意")
    expect(intake).to_contain_text("同意あり")
    expect(intake).to_contain_text("佐藤 花子")
    meeting = timeline.locator("[data-kind='task_completed'][data-step='meeting']")
    meeting.get_by_text("入力内容を表示").click()
    expect(meeting.locator("table")).to_contain_text("学校との連絡・家庭訪問")
    expect(meeting.locator("table")).to_contain_text("こども相談課")
    shot(page, "case-closed")
    check_page(page)  # the closed case, its timeline entries opened


def test_invalid_form_shows_errors_beside_the_fields_and_keeps_the_input(browser_page) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    page = browser_page
    sign_in(page, "hokatsu.sato")
    page.get_by_role("link", name="新規相談").click()
    label(page, "概要").fill("母と息子の二人暮らし")
    page.get_by_role("button", name="登録する").click()
    open_case_task(page, "1. 相談・調整")
    group(page, "支援対象者が複数").get_by_label("いいえ", exact=True).check()
    group(page, "本人同意").get_by_label("未確認").check()
    label(page, "相談の概要").fill("")
    page.get_by_role("button", name="完了して次へ進む").click()

    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("入力内容を確認してください（4件）")
    for field_id in ("all_targets_have_lead_department", "lead_department_can_handle_alone",
                     "coordination_problem", "summary"):
        error = page.locator(f"#f-{field_id}-error")
        expect(error).to_have_text(re.compile("入力してください"))
        described = page.locator(f"#f-{field_id}").get_attribute("aria-describedby")
        assert f"f-{field_id}-error" in described
    expect(page.locator("#f-summary")).to_have_attribute("aria-invalid", "true")
    # what the user chose is still there, and the fields without errors carry none
    expect(group(page, "支援対象者が複数").get_by_label("いいえ", exact=True)).to_be_checked()
    expect(group(page, "本人同意").get_by_label("未確認")).to_be_checked()
    expect(page.locator("#f-consent-error")).to_have_count(0)
    # the error summary links to the field
    summary.get_by_role("link", name=re.compile("相談の概要")).click()
    expect(page.locator("#f-summary")).to_be_focused()
    shot(page, "task-form-errors")
    check_page(page)


def test_tablet_width_and_keyboard(browser_page) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    page = browser_page
    page.set_viewport_size({"width": 768, "height": 1024})
    sign_in(page, "hokatsu.sato")
    page.get_by_role("link", name="緊急対応の報告").click()
    label(page, "概要").fill("独居高齢者宅から異臭、応答なし。")
    page.get_by_role("button", name="登録する").click()
    page.get_by_role("navigation", name="メインメニュー").get_by_role("link", name="作業一覧").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    # nothing wider than the screen: the table scrolls inside its own box if it must
    assert page.evaluate("document.documentElement.scrollWidth") <= 768
    shot(page, "queue-tablet")
    check_page(page)
    # keyboard: the first Tab reaches the skip link, which moves focus to the content
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="本文へスキップ")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    # the task opens and its first choice is reachable and operable by keyboard alone
    page.locator("tbody tr").first.get_by_role("link", name="1. 危険度・緊急度の判断").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="1. 危険度・緊急度の判断")).to_be_visible()
    first = group(page, "緊急度").get_by_label("高")
    first.focus()
    page.keyboard.press("Space")
    expect(first).to_be_checked()
    assert page.evaluate("document.documentElement.scrollWidth") <= 768
    shot(page, "task-form-tablet")
    check_page(page)


# Staff-page GET routes that are not HTML pages (JSON, CSV, a download, script, icon): axe has nothing to check.
NOT_PAGES = {"ui.case_diagram", "ui.download_attachment", "ui_admin.audit_csv", "ui_scheme.statistics_csv", "ui_reports.stuck_csv", "bpmn_js",
             "favicon"}
GHOST_CASE = "/cases/00000000-0000-0000-0000-000000000000"


def test_the_household_is_entered_on_its_page_and_answers_the_intakes_criteria(browser_page) -> None:  # noqa: ANN001
    """A caseworker enters a mother and her son (a row added without a script round trip of its
    own), sees them on the case page, and finds the intake's 図4 inputs answered from them."""
    from playwright.sync_api import expect

    page = browser_page
    sign_in(page, "hokatsu.sato")
    page.goto("/cases/new/consultation")
    label(page, "概要").fill("80代の母と50代の息子の二人暮らし。息子は無職で家賃を滞納している。")
    page.get_by_role("button", name="登録する").click()
    page.get_by_role("link", name=say("household_edit")).click()
    page.fill("#m0-name", "山田 花子")
    page.fill("#m0-kana", "やまだ はなこ")
    page.fill("#m0-birth_date", "1944-05-20")
    page.select_option("#m0-sex", "female")
    page.locator("#m0-attributes").get_by_label("高齢").check()
    page.select_option("#m0-department", "choju-anshin")
    page.fill("#m0-address", "豊中市中桜塚3-1-1")
    page.get_by_role("button", name=say("household_add")).click()
    expect(page.locator("#m0-name")).to_have_value("山田 花子")
    page.fill("#m1-name", "山田 太郎")
    page.fill("#m1-kana", "やまだ たろう")
    page.fill("#m1-relation", "子")
    page.fill("#m1-birth_date", "1974-09-01")
    page.locator("#m1-attributes").get_by_label("生活困窮").check()
    page.fill("#m1-phone", "090-1234-5678")
    check_page(page)
    shot(page, "household-edit")
    page.get_by_role("button", name=say("household_save")).click()
    expect(page.locator(".flash--success")).to_contain_text(say("household_saved"))
    table = page.locator(".household-table")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table).to_contain_text("長寿安心課")
    check_page(page)
    page.locator("#household").screenshot(path=str(SHOTS / "case-household.png"))
    open_case_task(page, "1. 相談・調整")
    expect(group(page, "支援対象者が複数").get_by_label("はい", exact=True)).to_be_checked()
    expect(group(page, "全員に担当部局がある").get_by_label("いいえ", exact=True)).to_be_checked()
    # offered, not imposed: the caseworker may answer otherwise
    group(page, "全員に担当部局がある").get_by_label("はい", exact=True).check()
    expect(group(page, "全員に担当部局がある").get_by_label("いいえ", exact=True)).not_to_be_checked()
    group(page, "全員に担当部局がある").get_by_label("いいえ", exact=True).check()
    group(page, "担当部局のみで対応可能").get_by_label("いいえ", exact=True).check()
    group(page, "関係機関・部局の連携調整に課題がある").get_by_label("いいえ", exact=True).check()
    group(page, "本人同意").get_by_label("同意あり").check()
    complete(page)
    # the criteria table's result, and which column of 図4 gave it, in words
    decision = page.locator("#decision")
    expect(decision.locator("[data-result]")).to_have_text("対象")
    expect(decision.locator("[data-rule]")).to_contain_text("第5列")
    check_page(page)
    decision.screenshot(path=str(SHOTS / "case-decision.png"))


def html_pages(app) -> set[str]:  # noqa: ANN001
    """Every GET route of the staff pages that renders HTML, from the app's URL map."""
    return {r.endpoint for r in app.url_map.iter_rules()
            if "GET" in r.methods and r.endpoint.split(".")[0] in ("ui", "ui_auth", "ui_admin", "ui_webhooks", "ui_scheme",
                                                                          "ui_reports", "ui_modeler", "ui_print")
            and r.endpoint not in NOT_PAGES}


def switch_language(page, to: str) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    toggle = page.get_by_role("group", name=say("display_language", "en" if to == "ja" else "ja"))
    toggle.get_by_role("button", name="English" if to == "en" else "日本語", exact=True).click()
    expect(page.locator("html")).to_have_attribute("lang", to)


def test_every_page_passes_axe_in_japanese_and_english(app, browser_page) -> None:  # noqa: ANN001
    """Every staff page, reached from the URL map so a new page cannot be left out, has no WCAG 2.1
    A/AA violation; sign-in, queue, start page and task form in English too."""
    from playwright.sync_api import expect

    page = browser_page
    seen: set[str] = set()

    def check(lang: str = "ja") -> None:
        check_page(page, lang)
        seen.add(endpoint_of(app, page))

    # --- English first: the sign-in page's switch, then a caseworker's pages
    page.goto("/login")
    check()
    switch_language(page, "en")
    check("en")
    sign_in(page, "hokatsu.sato", "en")
    expect(page.locator("tbody tr")).to_have_count(0)
    check("en")  # the empty queue
    page.goto("/cases/new/consultation")
    check("en")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#start-summary-error")).to_have_text("Enter a summary.")
    check("en")  # the start page refusing a case without its summary
    page.locator("#start-summary").fill("A mother and her son live alone.")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#diagram[data-ready='true']")).to_be_attached()
    check("en")  # the case page with its diagram
    page.locator(".task-list__item").first.get_by_role("link").first.click()
    check("en")  # a task form
    page.get_by_role("button", name=say("complete", "en")).click()
    expect(page.locator("#error-summary")).to_be_visible()
    check("en")  # the task form with its errors
    shot(page, "task-form-errors-en")

    # --- Japanese: the same pages and the rest
    switch_language(page, "ja")
    check()  # the task form with its errors, after the switch
    page.goto("/")
    expect(page.locator("tbody tr")).to_have_count(1)
    check()  # the queue with a task
    for kind in ("consultation", "emergency"):
        page.goto(f"/cases/new/{kind}")
        check()
    page.get_by_role("button", name="登録する").click()
    expect(page.locator("#start-summary-error")).to_be_visible()
    check()  # the start page refusing a case without its summary
    shot(page, "start-summary-required")
    label(page, "概要").fill("独居高齢者宅から異臭、応答なし。")
    page.get_by_role("button", name="登録する").click()
    check()  # an emergency case page
    page.get_by_role("link", name=say("household_edit")).click()
    check()  # the household's edit page, one empty row
    page.get_by_role("button", name=say("household_add")).click()
    page.fill("#m1-name", "山田 太郎")
    page.fill("#m1-birth_date", "2999-01-01")
    page.get_by_role("button", name=say("household_save")).click()
    expect(page.locator("#error-summary")).to_be_visible()
    check()  # the edit page with its errors
    page.get_by_role("link", name=say("household_back")).click()
    # its case file (issue 12): a support record and a document, in the list and the timeline
    page.select_option("#note-kind", "phone")
    page.fill("#note-text", "母から電話。本人は自宅にいると確認した。")
    page.get_by_role("button", name="記録する", exact=True).click()
    expect(page.locator("#notes-list .note")).to_have_count(1)
    expect(page.locator(".timeline__item--note")).to_have_count(1)
    page.set_input_files("#attachment-file", files=[{"name": "紹介状.pdf", "mimeType": "application/pdf",
                                                     "buffer": b"%PDF-1.4\n%%EOF\n"}])
    page.get_by_role("button", name="添付する", exact=True).click()
    expect(page.locator("#documents .document")).to_have_count(1)
    page.locator("#notes-title").scroll_into_view_if_needed()
    check()  # the case page with a support record and a document
    shot(page, "case-file")
    case_url = page.url
    page.get_by_role("link", name="印刷用の記録").click()
    check()  # its print view
    page.goto(case_url)
    page.locator(".task-list__item").first.get_by_role("link").first.click()
    check()
    page.goto("/account/tokens")
    check()
    page.goto("/cases")
    expect(page.locator("tbody tr")).to_have_count(2)  # the consultation and the emergency case
    check()  # every case the caseworker may see
    page.get_by_label("状態").select_option("active")
    page.get_by_role("button", name="適用").click()
    expect(page.locator("caption")).to_contain_text("2 件中")
    check()  # filtered
    shot(page, "cases")
    page.goto(GHOST_CASE)
    expect(page.get_by_role("heading", level=1, name="ページが見つかりません")).to_be_visible()
    check()  # the 404 page
    sign_out(page)
    page.goto("/no-such-page")
    expect(page.get_by_role("heading", level=1, name="ページが見つかりません")).to_be_visible()
    check_page(page)  # an address no route has: the same page, not the framework's

    # --- the scheme's pages (issue 13), as the secretariat's supervisor
    sign_in(page, "kyosei.kimura")
    page.goto("/consultations/new")
    check()
    page.get_by_label("生活困窮").check()
    page.get_by_label("くらし再建紹介").check()
    page.get_by_role("button", name="記録する").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    check()  # the list with the consultation just recorded
    shot(page, "consultations")
    page.goto("/consultations/new")
    page.get_by_role("button", name="記録する").click()
    expect(page.locator("#error-summary")).to_be_visible()
    check()  # the form with its errors
    page.goto("/events")
    check()
    page.fill("#e-held-on", "2026-03-20")
    page.fill("#e-place", "豊中市役所 第二庁舎")
    page.get_by_label("社会福祉協議会 地域福祉課").check()
    page.get_by_label("地域共生課").first.check()
    page.get_by_label("弁護士").check()
    page.get_by_role("button", name="登録する").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("くらしを守る総合相談会")
    page.get_by_label("困窮").check()
    page.get_by_label("住宅").check()
    page.get_by_label("複合課題がある").check()
    page.get_by_role("button", name="記録する").click()
    expect(page.locator(".report-line")).to_have_text("相談来所者 1人（複合課題 1人）、困窮 1件・住宅 1件")
    check()  # a consultation day with its report and the walk-in form
    shot(page, "event")
    page.goto("/places")
    page.fill("#p-name", "ふらっとカフェ庄内")
    page.get_by_role("button", name="参加先を登録する").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    check()  # the places register
    shot(page, "places")
    page.goto("/statistics?fiscal_year=2025")
    expect(page.locator("body[data-charts-ready='true']")).to_be_attached()
    check()  # the statistics with their charts
    shot(page, "statistics")
    sign_out(page)

    # --- the administrator's pages
    sign_in(page, "kanri.kato")
    for url in ("/admin/users", "/admin/users/hokatsu.sato", "/admin/audit"):
        page.goto(url)
        check()
    page.goto("/admin/audit?user=hokatsu.sato&since=2026-04-01")
    expect(page.locator("tbody tr").first).to_contain_text("hokatsu.sato")
    check()  # a filtered audit page
    shot(page, "audit")
    page.goto("/admin/users/hokatsu.sato/sessions")
    check()  # a user's signed-in sessions
    page.goto("/admin/sources")
    check()  # senders of signed messages
    page.goto("/admin/webhooks")
    check()  # no subscription yet
    page.fill("#webhook-url", "https://hooks.example.org/tsunagu")
    page.locator("input[name=events]").first.check()
    page.get_by_role("button", name=say("webhook_create")).click()
    check()  # the new subscription, its secret shown once
    page.goto("/admin/webhooks")
    page.get_by_role("link", name="https://hooks.example.org/tsunagu").first.click()
    check()  # one subscription: its events and delivery log
    for url in ("/supervisor", "/supervisor/stuck", "/supervisor/heatmap"):
        page.goto(url)
        check()  # the supervisors' pages (an administrator may read them too), over the cases they may see
    page.goto("/modeler")
    expect(page.locator("body[data-modeler-ready='true']")).to_be_attached()
    check()  # the process designers' page (its editing states: tests/ui/test_modeler_browser.py)

    missing = html_pages(app) - seen
    assert not missing, f"pages no browser test checks with axe-core: {sorted(missing)}"
    # the icon browsers ask for on every site is there and may be cached
    icon = page.request.get("/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"] == "image/vnd.microsoft.icon"
    assert "max-age=86400" in icon.headers["cache-control"]


def test_language_switch_is_a_labelled_toggle_that_keeps_the_page(browser_page) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    page = browser_page
    sign_in(page, "hokatsu.sato")
    page.goto("/cases/new/emergency")
    toggle = page.get_by_role("group", name="表示言語")
    japanese, english = (toggle.get_by_role("button", name=n, exact=True) for n in ("日本語", "English"))
    expect(japanese).to_have_attribute("aria-current", "true")
    expect(english).not_to_have_attribute("aria-current", "true")
    expect(english).to_have_attribute("lang", "en")
    page.locator("header").screenshot(path=str(SHOTS / "header-ja.png"))
    japanese.click()  # pressing the current language changes nothing
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    english.click()
    expect(page).to_have_url(re.compile("/cases/new/emergency$"))  # back on the same page, now in English
    expect(page.get_by_role("heading", level=1)).to_have_text(say("start_emergency_title", "en"))
    toggle = page.get_by_role("group", name="Language")
    expect(toggle.get_by_role("button", name="English", exact=True)).to_have_attribute("aria-current", "true")
    expect(toggle.get_by_role("button", name="日本語", exact=True)).to_have_attribute("lang", "ja")
    page.locator("header").screenshot(path=str(SHOTS / "header-en.png"))
    # the keyboard reaches both languages and switches back
    toggle.get_by_role("button", name="日本語", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("heading", level=1)).to_have_text(say("start_emergency_title"))


def test_supervisor_dashboard_stuck_list_and_heatmap(app, browser_page, session, env, personas, clock) -> None:  # noqa: ANN001
    """A supervisor's dashboard (counts, charts, the heatmap, the workload), the stuck list reached
    from it, and the heatmap page whose step opens the list filtered to that step; axe on each, in
    Japanese and English, with screenshots."""
    from playwright.sync_api import expect

    from engine.casework import cases
    from engine.models import User

    caseworker = session.get(User, personas.caseworker.id)
    for _ in range(4):
        cases.start_case(session, env, caseworker, "multi_agency", {"summary": "見守りが必要な世帯"}, None, clock.now())
    clock.advance(days=5)
    done = cases.start_case(session, env, caseworker, "multi_agency", {"summary": "相談"}, None, clock.now())
    clock.advance(hours=6)
    task = cases.case_open_tasks(session, done)[0]
    cases.complete_task(session, env, caseworker, task.id, {
        "multiple_targets": True, "all_targets_have_lead_department": False, "lead_department_can_handle_alone": False,
        "coordination_problem": True, "summary": "複合的な課題を抱える世帯", "consent": "unknown"}, clock.now())
    page = browser_page
    sign_in(page, "kyosei.kimura")
    page.get_by_role("link", name=say("nav_reports")).click()
    expect(page.get_by_role("heading", level=1, name=say("dashboard_title"))).to_be_visible()
    expect(page.locator("#diagram .heat").first).to_be_visible()
    expect(page.locator("#chart-reason")).to_be_visible()
    check_page(page)
    shot(page, "supervisor-dashboard")
    page.get_by_role("link", name="期限超過").first.click()
    expect(page.locator("tbody tr")).to_have_count(4)
    check_page(page)
    shot(page, "supervisor-stuck")
    page.goto("/supervisor/heatmap?process=multi_agency")
    expect(page.locator("#diagram[data-ready='true']")).to_be_attached()
    check_page(page)
    shot(page, "supervisor-heatmap")
    page.locator("#diagram a.heat").first.click()
    expect(page).to_have_url(re.compile(r"/supervisor/stuck\?process=multi_agency&step=intake$"))
    expect(page.locator("tbody tr")).to_have_count(8)  # four cases, each overdue and unassigned at intake
    switch_language(page, "en")
    check_page(page, "en")
    page.goto("/supervisor")
    expect(page.locator("#diagram[data-ready='true']")).to_be_attached()
    check_page(page, "en")
    shot(page, "supervisor-dashboard-en")
