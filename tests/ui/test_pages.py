"""The staff pages through Flask's test client, as the personas of DOMAIN.md use them."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import select, update
from werkzeug.datastructures import MultiDict

from engine.casework import cases
from engine.casework.timers import fire_due
from engine.models import HumanTask, User
from engine.settings import ROOT
from engine.status import TaskState
from engine.workflow import forms as engine_forms
from tests.ui.conftest import PASSWORD, PageClient, csrf_from
from web.ui import forms as ui_forms

ELIGIBLE = {"multiple_targets": True, "all_targets_have_lead_department": True,
            "lead_department_can_handle_alone": False, "coordination_problem": False,
            "summary": "高齢者宅に平日昼間、孫らしき小学生が在宅", "consent": "given"}


# ---------------------------------------------------------------- helpers


class FormReader(HTMLParser):
    """What a browser would submit from the page's first POST form with the given action."""

    def __init__(self, action: str) -> None:
        super().__init__(convert_charrefs=True)
        self.action = action
        self.inside = False
        self.template = 0
        self.pairs: list[tuple[str, str]] = []
        self._textarea: tuple[str, list[str]] | None = None
        self._select: tuple[str, list[tuple[str, bool]]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form" and a.get("action") == self.action and a.get("method") == "post":
            self.inside = True
        if not self.inside:
            return
        if tag == "template":
            self.template += 1
        if self.template or "disabled" in a:
            return
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "button"):
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:
                    self.pairs.append((a["name"], a.get("value", "on")))
            else:
                self.pairs.append((a["name"], a.get("value", "")))
        elif tag == "textarea" and a.get("name"):
            self._textarea = (a["name"], [])
        elif tag == "select" and a.get("name"):
            self._select = (a["name"], [])
        elif tag == "option" and self._select is not None:
            self._select[1].append((a.get("value", ""), "selected" in a))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "template" and self.template:
            self.template -= 1
        elif tag == "textarea" and self._textarea is not None:
            self.pairs.append((self._textarea[0], "".join(self._textarea[1])))
            self._textarea = None
        elif tag == "select" and self._select is not None:
            name, options = self._select
            chosen = [v for v, sel in options if sel] or [options[0][0] if options else ""]
            self.pairs.append((name, chosen[0]))
            self._select = None
        elif tag == "form" and self.inside:
            self.inside = False


def submitted(page: str, action: str) -> MultiDict:
    reader = FormReader(action)
    reader.feed(page)
    return MultiDict([p for p in reader.pairs if p[0] != "csrf_token"])


def text(r) -> str:  # noqa: ANN001
    return r.get_data(as_text=True)


def open_tasks(session_factory, case_id: str) -> list[HumanTask]:  # noqa: ANN001
    with session_factory() as s:
        return list(s.scalars(select(HumanTask).where(HumanTask.case_id == case_id,
                                                      HumanTask.state == TaskState.OPEN)))


def only_task(session_factory, case_id: str) -> HumanTask:  # noqa: ANN001
    (task,) = open_tasks(session_factory, case_id)
    return task


def start(client: PageClient, summary: str = "相談", kind: str = "consultation", group: str | None = None) -> str:
    data = {"summary": summary}
    if group:
        data["group"] = group
    r = client.post(f"/cases/new/{kind}", data)
    assert r.status_code == 302, text(r)[:3000]
    return r.headers["Location"].rsplit("/", 1)[-1]


def complete(client: PageClient, task_id: str, form: MultiDict | dict) -> None:
    data = MultiDict(form)
    data["ui-action"] = "complete"
    r = client.post(f"/tasks/{task_id}", data)
    assert r.status_code == 302, re.findall(r'class="field-error"[^>]*>(.*?)</p>', text(r))


def intake_form(summary: str = ELIGIBLE["summary"]) -> MultiDict:
    return MultiDict({"multiple_targets": "true", "all_targets_have_lead_department": "true",
                      "lead_department_can_handle_alone": "false", "coordination_problem": "false",
                      "summary": summary, "consent": "given"})


@pytest.fixture
def at_assessment(staff, session_factory):  # noqa: ANN001, ANN201
    """A consultation the caseworker brought to the secretariat: its assessment task is open."""
    ref = staff("caseworker")
    case_id = start(ref, "祖母と孫の二人暮らし")
    complete(ref, only_task(session_factory, case_id).id, intake_form("祖母と孫の二人暮らし"))
    return case_id


# ---------------------------------------------------------------- sign-in, sessions, CSRF


def test_sign_in_page_is_japanese_utf8_and_carries_a_csrf_token(app) -> None:  # noqa: ANN001
    r = app.test_client().get("/login")
    assert r.status_code == 200 and r.content_type == "text/html; charset=utf-8"
    page = text(r)
    assert '<html lang="ja">' in page and '<meta charset="utf-8">' in page
    assert "職員ログイン" in page and '<label for="username">ユーザー名</label>' in page
    assert len(csrf_from(page)) >= 32
    assert "Content-Security-Policy" in r.headers and r.headers["X-Frame-Options"] == "DENY"


def test_pages_need_sign_in(app) -> None:  # noqa: ANN001
    client = app.test_client()
    for url in ("/", "/cases/new/consultation", "/tasks/x", "/cases/x", "/cases/x/diagram"):
        r = client.get(url)
        assert r.status_code == 302 and r.headers["Location"].startswith("/login?next="), url


def test_sign_in_success_and_failure(staff, personas) -> None:  # noqa: ANN001
    client = staff()
    r = client.login("kyosei.tanaka", "wrong password")
    assert r.status_code == 401 and "ユーザー名またはパスワードが正しくありません" in text(r)
    assert 'value="kyosei.tanaka"' in text(r)  # the name is kept, the password is not
    r = client.login("nobody", PASSWORD)
    assert r.status_code == 401
    r = client.login("kyosei.tanaka")
    assert r.status_code == 302 and r.headers["Location"] == "/"
    page = text(client.get("/"))
    assert "田中 一郎" in page and "作業一覧" in page


def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_site(staff) -> None:  # noqa: ANN001
    client = staff()
    r = client.get("/cases/new/emergency")
    assert r.headers["Location"] == "/login?next=/cases/new/emergency"
    client.get(r.headers["Location"])
    r = client.post("/login", {"username": "hokatsu.sato", "password": PASSWORD, "next": "/cases/new/emergency"})
    assert r.headers["Location"] == "/cases/new/emergency"
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        other = staff()
        other.get("/login")
        r = other.post("/login", {"username": "hokatsu.sato", "password": PASSWORD, "next": evil})
        assert r.headers["Location"] == "/", evil


def test_inactive_user_cannot_sign_in_and_is_signed_out(staff, personas, session) -> None:  # noqa: ANN001
    client = staff("outsider")
    assert client.get("/").status_code == 200
    personas.outsider.active = False
    session.commit()
    assert client.get("/").status_code == 302
    assert staff().login("wakamono.ito").status_code == 401


def test_sign_in_expires_after_a_working_day_even_when_in_use(staff, clock) -> None:  # noqa: ANN001
    client = staff("caseworker")
    for _ in range(11 * 3):  # busy all day: a request every 20 minutes
        clock.advance(minutes=20)
        assert client.get("/").status_code == 200
    clock.advance(hours=1, minutes=1)
    assert client.get("/").status_code == 302


def test_session_ends_after_inactivity(app, staff, clock) -> None:  # noqa: ANN001
    from web.ui.auth import IDLE_TIMEOUT

    app.config["SESSION_IDLE_TIMEOUT"] = IDLE_TIMEOUT  # the production default, 30 minutes
    client = staff("caseworker")
    clock.advance(minutes=29)
    assert client.get("/").status_code == 200
    clock.advance(minutes=31)
    r = client.get("/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert "操作がなかったため" in text(client.get(r.headers["Location"]))


def test_sign_in_slows_down_after_repeated_failures_from_one_address(staff, clock) -> None:  # noqa: ANN001
    client = staff()
    for _ in range(3):
        assert client.login("hokatsu.sato", "wrong password").status_code == 401
    locked = client.login("hokatsu.sato")  # the right password, too soon
    assert locked.status_code == 429 and locked.headers["Retry-After"] == "2" and "2 秒後まで" in text(locked)
    clock.advance(seconds=2)
    assert client.login("hokatsu.sato").status_code == 302


def test_failures_from_another_address_do_not_lock_a_colleague_out(staff) -> None:  # noqa: ANN001
    attacker = staff()
    attacker.client.environ_base["REMOTE_ADDR"] = "198.51.100.66"
    for _ in range(6):
        assert attacker.login("hokatsu.sato", "guess guess").status_code in (401, 429)
    assert attacker.login("hokatsu.sato", "guess guess").status_code == 429
    assert staff().login("hokatsu.sato").status_code == 302


def test_sign_out(staff) -> None:  # noqa: ANN001
    client = staff("caseworker")
    r = client.post("/logout")
    assert r.status_code == 302
    assert "ログアウトしました" in text(client.get(r.headers["Location"]))
    assert client.get("/").status_code == 302


def test_a_saved_cookie_opens_nothing_after_sign_out(app, staff) -> None:  # noqa: ANN001
    client = staff("caseworker")
    saved = client.client.get_cookie("tsunagu_session").value
    assert client.post("/logout").status_code == 302
    replay = app.test_client()
    replay.set_cookie("tsunagu_session", saved)
    r = replay.get("/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert replay.get("/account/tokens").status_code == 302


def test_the_cookie_holds_only_a_random_key_kept_hashed(app, staff, session) -> None:  # noqa: ANN001
    from sqlalchemy import select

    from engine.models import WebSession
    from engine.security.sessions import hash_key

    client = staff("caseworker")
    key = client.client.get_cookie("tsunagu_session").value
    assert client.client.get_cookie("session") is None
    row = session.scalar(select(WebSession).where(WebSession.key_hash == hash_key(key)))
    assert row is not None and row.user_id is not None and len(key) >= 40
    assert session.scalar(select(WebSession).where(WebSession.key_hash == key)) is None


def test_sign_in_gives_a_new_session_key(staff) -> None:  # noqa: ANN001
    client = staff()
    client.get("/login")
    before = client.client.get_cookie("tsunagu_session").value
    client.login("hokatsu.sato")
    after = client.client.get_cookie("tsunagu_session").value
    assert after != before
    planted = staff()
    planted.client.set_cookie("tsunagu_session", before)
    assert planted.get("/").status_code == 302


def test_signing_in_over_a_session_ends_it(app, staff) -> None:  # noqa: ANN001
    client = staff("caseworker")
    before = client.client.get_cookie("tsunagu_session").value
    assert client.login("kyosei.tanaka").status_code == 302
    replay = app.test_client()
    replay.set_cookie("tsunagu_session", before)
    assert replay.get("/").status_code == 302


def test_session_cookie_is_secure_when_configured(settings, env, clock, session_factory) -> None:  # noqa: ANN001
    from dataclasses import replace

    from web import create_app

    app = create_app(replace(settings, secure_cookies=True), clock=clock, env=env, config={"TESTING": True})
    assert "Secure" in app.test_client().get("/login").headers["Set-Cookie"]


def test_post_without_the_csrf_token_is_refused(staff, at_assessment, session_factory) -> None:  # noqa: ANN001
    anonymous = staff()
    anonymous.get("/login")
    r = anonymous.post("/login", {"username": "kyosei.tanaka", "password": PASSWORD}, csrf=False)
    assert r.status_code == 400 and "フォームの有効期限が切れました" in text(r)

    sec = staff("secretariat")
    task = only_task(session_factory, at_assessment)
    for url in (f"/tasks/{task.id}/claim", f"/tasks/{task.id}", "/cases/new/consultation", "/logout", "/lang"):
        assert sec.post(url, {"ui-action": "save"}, csrf=False).status_code == 400, url
    r = sec.client.post(f"/tasks/{task.id}/claim", data={"csrf_token": "forged"})
    assert r.status_code == 400
    assert only_task(session_factory, at_assessment).assignee_id is None
    # a token from another browser session is worth nothing here
    other = staff("supervisor")
    r = sec.client.post(f"/tasks/{task.id}/claim", data={"csrf_token": other.token})
    assert r.status_code == 400


def test_csrf_token_changes_at_sign_in(staff) -> None:  # noqa: ANN001
    client = staff()
    client.get("/login")
    before = client.token
    client.login("hokatsu.sato")
    client.get("/")
    assert client.token and client.token != before


def test_json_api_with_bearer_token_needs_no_csrf_token(api) -> None:  # noqa: ANN001
    r = api("caseworker").post("/api/cases", json={"process": "multi_agency", "data": {"summary": "API"}})
    assert r.status_code == 201


def test_session_cookie_is_httponly_lax_and_secure_on_https(app, staff) -> None:  # noqa: ANN001
    staff()
    r = app.test_client().get("/login")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    r = app.test_client().get("/login", base_url="https://tsunagu.example")
    assert "Secure" in r.headers["Set-Cookie"]


def test_secret_key_comes_from_the_environment_or_a_generated_file(monkeypatch, tmp_path: Path) -> None:
    from web.ui import auth

    monkeypatch.setenv("TSUNAGU_SECRET_KEY", "from-env")
    assert auth._secret_key() == "from-env"
    monkeypatch.delenv("TSUNAGU_SECRET_KEY")
    monkeypatch.setenv("TSUNAGU_SECRET_FILE", str(tmp_path / "var" / "secret_key"))
    first = auth._secret_key()
    assert len(first) >= 40 and auth._secret_key() == first
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o777 == 0o600


# ---------------------------------------------------------------- language


def test_english_chosen_before_sign_in_stays_after_it_and_after_sign_out(staff) -> None:  # noqa: ANN001
    client = staff()
    client.get("/login")
    client.post("/lang", {"lang": "en", "next": "/login"})
    assert "Staff sign-in" in text(client.get("/login"))
    assert client.login("hokatsu.sato").status_code == 302
    assert "Work queue" in text(client.get("/"))
    client.post("/logout")
    assert "You have signed out." in text(client.get("/login"))


def test_language_switch_to_english_and_back(staff) -> None:  # noqa: ANN001
    client = staff("caseworker")
    r = client.post("/lang", {"lang": "en", "next": "/cases/new/consultation"})
    assert r.headers["Location"] == "/cases/new/consultation"
    page = text(client.get("/cases/new/consultation"))
    assert '<html lang="en">' in page and "New consultation (multi-agency)" in page and "Sign out" in page
    page = text(client.get("/"))
    assert "Work queue" in page and "作業一覧" not in page.split("<main")[1]
    client.post("/lang", {"lang": "ja"})
    assert '<html lang="ja">' in text(client.get("/"))
    client.post("/lang", {"lang": "xx"})  # unknown: ignored
    assert '<html lang="ja">' in text(client.get("/"))


def test_language_switch_offers_both_languages_each_in_its_own(staff) -> None:  # noqa: ANN001
    client = staff()
    for lang, current, other in (("ja", "日本語", "English"), ("en", "English", "日本語")):
        client.post("/lang", {"lang": lang})
        page = text(client.get("/login"))
        switch = page.split('class="lang-switch"')[1].split("</form>")[0]
        assert 'role="group" class="lang-switch__group" aria-labelledby="lang-switch-label"' in switch
        label = re.search(r'id="lang-switch-label">([^<]+)<', switch).group(1)
        assert label == ("表示言語" if lang == "ja" else "Language")
        buttons = re.findall(r'<button type="submit" name="lang" value="(\w+)" lang="(\w+)"[^>]*?'
                             r'( aria-current="true")?>([^<]+)</button>', switch)
        assert buttons == [("ja", "ja", ' aria-current="true"' if lang == "ja" else "", "日本語"),
                           ("en", "en", ' aria-current="true"' if lang == "en" else "", "English")]
        assert current in switch and other in switch and 'name="csrf_token"' in switch
    # the switch still refuses a POST without the page's CSRF token
    assert client.post("/lang", {"lang": "ja"}, csrf=False).status_code == 400


def test_english_pages_mark_the_diagrams_and_forms_japanese_text(staff, at_assessment, session_factory) -> None:  # noqa: ANN001
    """Step names and form text exist in Japanese only: on an English page they carry lang="ja"
    (WCAG 3.1.2) so a screen reader reads them in Japanese; a Japanese page needs no marks."""
    client = staff("secretariat")
    task = only_task(session_factory, at_assessment)
    url = f"/tasks/{task.id}"
    assert 'lang="ja"' not in text(client.get(url)).split("</header>")[1]
    client.post("/lang", {"lang": "en"})
    page = text(client.get(url))
    assert '<html lang="en">' in page
    assert '<h1><span lang="ja">2. アセスメント</span></h1>' in page
    assert '<span lang="ja">アセスメント内容</span>' in page  # a field's label
    assert re.search(r'<p class="eyebrow"><span lang="ja">[^<]+</span> · ', page)  # the process
    case = text(client.get(f"/cases/{at_assessment}"))
    assert '<span lang="ja">1. 相談・調整</span>' in case  # in the timeline and the progress list
    queue = text(client.get("/"))
    assert re.search(r'<a href="/tasks/[^"]+"><span lang="ja">2. アセスメント</span></a></th>', queue)
    assert re.search(r'<option value="assessment"[^>]* lang="ja">2. アセスメント</option>', queue)


def test_every_page_declares_utf8_and_its_icon() -> None:
    for path in (ROOT / "web" / "templates" / "ui").glob("*.html"):
        source = path.read_text(encoding="utf-8")
        if path.name.startswith("_"):
            continue  # a partial, included in a page
        if path.name == "base.html":
            head = source.split("</head>")[0]
            assert '<meta charset="utf-8">' in head.split("<title>")[0], "charset must come before any text"
            assert 'rel="icon"' in head
        else:
            assert source.startswith('{% extends "ui/base.html" %}'), f"{path.name} has no head of its own"


def test_errors_outside_the_api_are_our_page_in_the_pages_language(app) -> None:  # noqa: ANN001
    client = PageClient(app.test_client())
    r = client.get("/no-such-page")
    page = text(r)
    assert r.status_code == 404 and r.mimetype == "text/html"
    assert '<html lang="ja">' in page and '<meta charset="utf-8">' in page and "ページが見つかりません" in page
    r = client.get("/logout")  # POST only
    assert r.status_code == 405 and "POST" in r.headers["Allow"]
    assert "このページはこの方法では開けません" in text(r)
    client.post("/lang", {"lang": "en"})
    assert "Page not found" in text(client.get("/static/no-such.css"))
    # the API's errors keep their JSON envelope
    r = client.get("/api/no-such-thing")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"


def test_favicon_is_served_and_cacheable(app) -> None:  # noqa: ANN001
    client = app.test_client()  # signed out: browsers ask for it on the sign-in page too
    r = client.get("/favicon.ico")
    assert r.status_code == 200 and r.mimetype == "image/vnd.microsoft.icon"
    assert r.data[:4] == b"\x00\x00\x01\x00"  # an ICO directory
    assert "max-age=86400" in r.headers["Cache-Control"] and "no-store" not in r.headers["Cache-Control"]
    svg = client.get("/static/favicon.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    r.close()
    svg.close()


# ---------------------------------------------------------------- work queue


def test_queue_shows_my_groups_tasks_with_the_columns(staff, at_assessment, session_factory) -> None:  # noqa: ANN001
    page = text(staff("secretariat").get("/"))
    for header in ("案件番号", "ステップ", "案件の概要", "グループ", "担当者", "経過", "期限"):
        assert re.search(rf'<th scope="col"[^>]*>{header}</th>', page), header
    assert "MA-2026-00001" in page and "2. アセスメント" in page and "祖母と孫の二人暮らし" in page
    assert "多機関協働事業事務局" in page and "未割当" in page and "2026-04-15 09:00" in page
    # the caseworker's queue no longer has it; an outsider never had it
    assert 'data-step="assessment"' not in text(staff("caseworker").get("/"))
    assert "MA-2026-00001" not in text(staff("outsider").get("/"))


def test_overdue_tasks_stand_out(staff, at_assessment, clock) -> None:  # noqa: ANN001
    sec = staff("secretariat")
    assert "is-overdue" not in text(sec.get("/"))
    clock.advance(days=15)
    sec = staff("secretariat")
    page = text(sec.get("/"))
    assert 'class="is-overdue"' in page and "期限超過" in page
    assert "MA-2026-00001" in text(sec.get("/?overdue=1"))


def _many_cases(staff, session_factory, clock):  # noqa: ANN001, ANN202
    """Secretariat queue: MA-1 assessment (claimed by tanaka), MA-2 assessment, EM-1 not ours,
    MA-3 plan; the caseworker also has an emergency to judge."""
    ref, sec = staff("caseworker"), staff("secretariat")
    ids = {}
    for n, summary in enumerate(["ごみ屋敷の世帯", "ひきこもりの50代男性", "外国籍の母子世帯"], start=1):
        ids[n] = start(ref, summary)
        complete(ref, only_task(session_factory, ids[n]).id, intake_form(summary))
        clock.advance(hours=1)
    sec.post(f"/tasks/{only_task(session_factory, ids[1]).id}/claim")
    complete(sec, only_task(session_factory, ids[3]).id, MultiDict([("members", "jutaku"), ("assessment", "a")]))
    ids["em"] = start(ref, "異臭・応答なし", kind="emergency")
    return ids


def test_queue_filters_search_and_sort(staff, session_factory, clock) -> None:  # noqa: ANN001
    ids = _many_cases(staff, session_factory, clock)
    sec = staff("secretariat")

    def rows(query: str = "") -> list[str]:
        page = text(sec.get("/" + query))
        body = page.split("<tbody>")[1].split("</tbody>")[0] if "<tbody>" in page else ""
        return re.findall(r'<a href="/cases/[^"]+">([A-Z]{2}-\d{4}-\d{5})</a>', body)

    assert rows() == ["MA-2026-00001", "MA-2026-00002", "MA-2026-00003"]  # due date: assessments first
    assert rows("?step=plan") == ["MA-2026-00003"]
    assert rows("?process=emergency") == []
    assert rows("?assignee=me") == ["MA-2026-00001"]
    assert rows("?assignee=unassigned") == ["MA-2026-00002", "MA-2026-00003"]
    assert rows("?group=secretariat") == ["MA-2026-00001", "MA-2026-00002", "MA-2026-00003"]
    assert rows("?group=chiiki-kyosei") == []
    assert rows("?q=ひきこもり") == ["MA-2026-00002"]
    assert rows("?q=MA-2026-00003") == ["MA-2026-00003"]
    assert rows("?q=%25") == []  # LIKE wildcards are searched for literally
    assert rows("?sort=case") == ["MA-2026-00001", "MA-2026-00002", "MA-2026-00003"]
    assert rows("?sort=age") == ["MA-2026-00001", "MA-2026-00002", "MA-2026-00003"]
    assert rows("?overdue=1") == []
    assert rows("?sort=nonsense&assignee=nobody&page=x") == rows()  # bad values fall back to defaults
    page = text(sec.get("/?step=plan&q=外国籍"))
    assert 'value="外国籍"' in page and '<option value="plan" selected>' in page and "条件をクリア" in page
    # the caseworker's own queue: the emergency to judge, filtered by process
    ref = staff("caseworker")
    assert "1. 危険度・緊急度の判断" in text(ref.get("/?process=emergency"))
    assert ids["em"]


def test_a_queue_longer_than_its_count_shows_more_than(staff, personas, session, env, clock,  # noqa: ANN001
                                                       monkeypatch) -> None:
    # Counted only so far past the page: the count stops there rather than reading every open task.
    from web.ui import views

    monkeypatch.setattr(views, "QUEUE_COUNT_AHEAD", 60)
    for i in range(103):
        cases.start_case(session, env, personas.caseworker, "emergency", {"summary": f"通報 {i:03d}"}, None,
                         clock.now())
    ref = staff("caseworker")
    page = text(ref.get("/"))
    assert "作業一覧（60件超のうち 1〜50件目）" in page and page.count("data-task-id=") == 50
    assert "1 / 2+ ページ" in page and 'rel="next" href="/?page=2"' in page
    page = text(ref.get("/?page=2"))  # counted to 60 past this page's first: all 103
    assert "作業一覧（103件中 51〜100件目）" in page and "2 / 3 ページ" in page
    page = text(ref.get("/?page=3"))
    assert "作業一覧（103件中 101〜103件目）" in page and page.count("data-task-id=") == 3
    assert 'rel="next"' not in page
    monkeypatch.setattr(views, "QUEUE_COUNT_AHEAD", 20)  # less than a page: the page still links onwards
    page = text(ref.get("/"))
    assert "作業一覧（20件超のうち 1〜50件目）" in page and 'rel="next" href="/?page=2"' in page


def test_the_engine_counts_the_queue_at_most_so_far_ahead(session, env, personas, clock) -> None:  # noqa: ANN001
    from engine.casework.queue import search_queue

    for i in range(30):
        cases.start_case(session, env, personas.caseworker, "emergency", {"summary": f"通報 {i:02d}"}, None,
                         clock.now())
    assert search_queue(session, personas.caseworker, now=clock.now())[1] == 30
    items, total = search_queue(session, personas.caseworker, page_size=10, count_ahead=12, now=clock.now())
    assert len(items) == 10 and total == 13  # the bound plus one: "more than 12"
    items, total = search_queue(session, personas.caseworker, page=2, page_size=10, count_ahead=12, now=clock.now())
    assert len(items) == 10 and total == 23  # counted 12 past the 11th
    assert search_queue(session, personas.caseworker, page_size=10, count_ahead=40, now=clock.now())[1] == 30


def test_queue_pages_of_fifty(staff, personas, session, env, clock) -> None:  # noqa: ANN001
    for i in range(53):
        cases.start_case(session, env, personas.caseworker, "emergency", {"summary": f"通報 {i:02d}"}, None,
                         clock.now())
        clock.advance(minutes=1)
    ref = staff("caseworker")
    page = text(ref.get("/"))
    assert "作業一覧（53件中 1〜50件目）" in page and page.count("data-task-id=") == 50
    assert "1 / 2 ページ" in page and 'rel="next" href="/?page=2"' in page
    page = text(ref.get("/?page=2"))
    assert "作業一覧（53件中 51〜53件目）" in page and page.count("data-task-id=") == 3
    assert 'rel="prev" href="/"' in page
    page = text(ref.get("/?page=2&q=%E9%80%9A%E5%A0%B1+5"))  # 通報 5x: 4 matches, one page
    assert "該当する作業はありません" in page or page.count("data-task-id=") == 0
    assert text(ref.get("/?q=%E9%80%9A%E5%A0%B1+5")).count("data-task-id=") == 3


def test_claim_release_and_conflict_messages(staff, at_assessment, session_factory) -> None:  # noqa: ANN001
    sec, sup = staff("secretariat"), staff("supervisor")
    task = only_task(session_factory, at_assessment)
    r = sec.post(f"/tasks/{task.id}/claim", {"next": "/?assignee=me"})
    assert r.headers["Location"] == "/?assignee=me"
    page = text(sec.get("/?assignee=me"))
    assert "「2. アセスメント」を担当しました" in page and "田中 一郎" in page and "担当を外す" in page
    r = sup.post(f"/tasks/{task.id}/claim")
    page = text(sup.get(r.headers["Location"]))
    assert "他の職員が先に処理しました" in page
    assert only_task(session_factory, at_assessment).assignee_id is not None
    sec.post(f"/tasks/{task.id}/release")
    assert only_task(session_factory, at_assessment).assignee_id is None
    assert "の担当を外しました" in text(sec.get("/"))


def test_supervisor_assigns_to_a_named_colleague(staff, at_assessment, session_factory, personas) -> None:  # noqa: ANN001
    task = only_task(session_factory, at_assessment)
    assert "assign-form" not in text(staff("secretariat").get("/"))
    sup = staff("supervisor")
    page = text(sup.get("/"))
    assert '<option value="kyosei.tanaka">田中 一郎</option>' in page and "割り当て" in page
    sup.post(f"/tasks/{task.id}/assign", {"assignee": "kyosei.tanaka"})
    assert "「2. アセスメント」を kyosei.tanaka さんに割り当てました" in text(sup.get("/"))
    assert only_task(session_factory, at_assessment).assignee_id == personas.secretariat.id
    sup.post(f"/tasks/{task.id}/assign", {"assignee": "hokatsu.sato"})  # not in the task's group
    assert "alert" in text(sup.get("/"))
    sec = staff("secretariat")
    r = sec.post(f"/tasks/{task.id}/assign", {"assignee": "kyosei.kimura"})
    assert r.status_code == 403 and "この操作を行う権限がありません" in text(r)
    assert only_task(session_factory, at_assessment).assignee_id == personas.secretariat.id


# ---------------------------------------------------------------- the queue query in the engine


def test_search_queue_matches_the_access_rule_of_the_api(staff, session_factory, clock, personas, session) -> None:  # noqa: ANN001
    """engine.casework.queue splits the queue into index-friendly parts; together they must be exactly
    engine.security.access.task_queue_clause, which GET /api/tasks uses."""
    from engine.casework.queue import search_queue

    _many_cases(staff, session_factory, clock)
    # a task of another group still assigned to the caseworker (e.g. after a move between groups)
    with session_factory() as s:
        em = s.scalar(select(HumanTask).where(HumanTask.process_key == "emergency"))
        s.execute(update(HumanTask).where(HumanTask.id == em.id).values(group_id="jutaku",
                                                                          assignee_id=personas.caseworker.id))
        s.commit()
    for who in ("caseworker", "secretariat", "supervisor", "lead", "outsider", "elder_care"):
        with session_factory() as s:
            actor = s.get(User, getattr(personas, who).id)
            expected = [t.id for t in cases.list_tasks(s, actor)]
            got, total = search_queue(s, actor, now=clock.now())
            assert [i.id for i in got] == expected and total == len(expected), who
    with session_factory() as s:
        actor = s.get(User, personas.caseworker.id)
        got, _ = search_queue(s, actor, assignee="me", now=clock.now())
        assert [i.id for i in got] == [em.id]


def test_search_queue_refuses_unknown_options(session, personas, clock) -> None:  # noqa: ANN001
    from engine.casework.queue import search_queue
    from engine.errors import Invalid

    for kw in ({"assignee": "boss"}, {"sort": "random"}, {"page": 0}, {"page_size": 0}, {"q": "x" * 201}):
        with pytest.raises(Invalid):
            search_queue(session, personas.secretariat, now=clock.now(), **kw)


# ---------------------------------------------------------------- task forms


# The national sheets' items (NATIONAL_FORMS.md) of the intake, assessment, plan and evaluation forms.
NATIONAL_SAMPLES = {
    "intake": {"received_on": "2026-04-01", "visitor": "family", "visitor_name": "山田花子", "visitor_phone": "06-1234-5678",
               "visitor_relation": "長女", "email": "taro@example.jp", "concerns": ["health", "care", "other"],
               "main_concern": "care", "concerns_other": "近所とのトラブル", "wishes": "自宅で暮らし続けたい",
               "work_status": "pensioner", "housing_type": "rented", "health_insurance": "late_elderly",
               "pension": "receiving", "applied": True, "privacy_acknowledged": True, "applied_on": "2026-04-01",
               "signed_by": "representative", "representative_name": "山田花子"},
    "assessment": {"background": "民生委員から", "chief_complaint": "孫の世話が不安", "health": "要介護1", "work": "無職",
                   "finances": "年金のみ", "monthly_income_yen": 120000, "debts": "unknown", "living": "借家",
                   "relations": "近所付き合いなし", "issue_kinds": ["school", "care"], "strengths": "料理が得意"},
    "support_plan": {"person_wish": "孫と暮らしたい", "goal_long": "安定した生活", "goal_short": "介護サービスの利用",
                     "person_actions": "通院を続ける", "services": ["self_reliance", "budget"], "outreach": False,
                     "plan_made_on": "2026-04-10", "plan_start": "2026-04-15", "plan_end": "2026-10-14",
                     "plan_confirmed": True, "plan_signed_on": "2026-04-12"},
    "closure": {"evaluated_on": "2026-05-01", "goal_achievement": "partly", "changes": ["services_linked"],
                "person_view": "安心した"},
}
NATIONAL_WIDGETS = {
    "intake": {"received_on": "date", "visitor": "radio", "visitor_name": "text", "visitor_phone": "text",
               "visitor_relation": "text", "email": "text", "concerns": "checkboxes", "main_concern": "select",
               "concerns_other": "text", "wishes": "textarea", "work_status": "select", "housing_type": "select",
               "health_insurance": "select", "pension": "radio", "applied": "checkbox", "privacy_acknowledged": "checkbox",
               "applied_on": "date", "signed_by": "radio", "representative_name": "text"},
    "assessment": {"background": "textarea", "chief_complaint": "textarea", "health": "textarea", "work": "textarea",
                   "finances": "textarea", "monthly_income_yen": "integer", "debts": "radio", "living": "textarea",
                   "relations": "textarea", "issue_kinds": "checkboxes", "strengths": "textarea"},
    "support_plan": {"person_wish": "textarea", "goal_long": "textarea", "goal_short": "textarea",
                     "person_actions": "textarea", "services": "checkboxes", "outreach": "checkbox", "plan_made_on": "date",
                     "plan_start": "date", "plan_end": "date", "plan_confirmed": "checkbox", "plan_signed_on": "date"},
    "closure": {"evaluated_on": "date", "goal_achievement": "radio", "changes": "checkboxes", "person_view": "textarea"},
}
SAMPLES = {
    "advice": {"advice": "長寿安心課の介護サービスで対応可能です。", "resources": "地域包括支援センターの見守り"},
    "advice_ack": {"acknowledged": True, "note": "了解しました"},
    "assessment": {"members": ["choju-anshin", "kodomo-sodan"], "assessment": "介護と不登校", "household": "祖母と孫",
                   **NATIONAL_SAMPLES["assessment"]},
    "closure": {"evaluation": "支援が定着した", "outcome": "transferred", "evaluation_review_held_on": "2026-05-01",
                "evaluation_review_result": "approved", "evaluation_review_comments": "終結を承認",
                "resource_gaps": [{"kind": "housing", "need": "単身高齢者向けの住まい"}], **NATIONAL_SAMPLES["closure"]},
    "emergency_end": {"outcome": "入院", "ended_on": "2026-04-02"},
    "emergency_request_ack": {"acknowledged": True, "action_taken": "同行訪問"},
    "role_report": {"status": "concern", "report": "通所が減っている"},
    "emergency_handover": {"continue_support": False, "reason": "退院後の生活"},
    "emergency_judgement": {"urgency": "medium", "danger_to": ["life", "rights"], "situation": "応答なし"},
    "emergency_response": {"action": "request", "requested_groups": ["hoken-yobo", "jutaku"], "response": "救急要請"},
    "intake": ELIGIBLE | NATIONAL_SAMPLES["intake"],
    "monitoring": {"next": "reassess", "progress": "経過", "new_issues": "家賃滞納"},
    "support_meeting": {"held_on": "2026-04-01", "participants": ["choju-anshin", "kodomo-sodan"],
                        "roles": [{"group": "choju-anshin", "role": "介護サービス調整"},
                                  {"group": "kodomo-sodan", "role": "学校との連絡"}],
                        "decided_policy": "見守り", "minutes": "会議録", "plan_review_held_on": "2026-04-01",
                        "plan_review_result": "appropriate", "plan_review_comments": "適切"},
    "support_plan": {"issues": "介護・不登校", "policy": "見守り", "monitoring_interval": "P3M", "participation": True,
                     "participation_need": "居場所", **NATIONAL_SAMPLES["support_plan"]},
    "participation_match": {"place_id": 1, "trial_plan": "週1回", "checkin_interval": "P14D"},
    "participation_checkin": {"progress": "通えている", "next": "settle"},
    "outreach_referral": {"source": "insurance", "household_ref": "K-0042", "amount_yen": 98000,
                          "months_in_arrears": 4},
    "outreach_assign": {"summary": "国民健康保険料の滞納", "attempt_interval": "P2W", "max_attempts": 4, "priority": "high", "notes": "督促に応答なし"},
    "outreach_contact": {"method": "joint_visit", "joint_group": "nozei", "attempted_on": "2026-04-09",
                         "result": "not_reached", "notes": "不在"},
    "outreach_home_visit": {"visited_on": "2026-04-09", "companions": ["kokuho", "nozei"], "situation": "単身世帯",
                            "needs": ["poverty", "housing"], "consent": "unknown"},
    "outreach_decision": {"next": "consultation", "reason": "家計の相談", "consultation_group": "kurashi-shien",
                          "consultation": "くらし再建の相談につないだ"},
    "outreach_close": {"close_reason": "other_agency", "other_agency": "fukushi-jimusho", "note": "生活保護で対応"},
}
WIDGETS = {
    "advice": {"advice": "textarea", "resources": "textarea"},
    "advice_ack": {"acknowledged": "checkbox", "note": "textarea"},
    "assessment": {"members": "groups", "assessment": "textarea", "household": "textarea", **NATIONAL_WIDGETS["assessment"]},
    "closure": {"evaluation": "textarea", "outcome": "radio", "evaluation_review_held_on": "date",
                "evaluation_review_result": "radio", "evaluation_review_comments": "textarea", "resource_gaps": "table",
                **NATIONAL_WIDGETS["closure"]},
    "emergency_end": {"outcome": "textarea", "ended_on": "date"},
    "emergency_request_ack": {"acknowledged": "checkbox", "action_taken": "textarea"},
    "role_report": {"status": "radio", "report": "textarea"},
    "emergency_handover": {"continue_support": "yesno", "reason": "textarea"},
    "emergency_judgement": {"urgency": "radio", "danger_to": "checkboxes", "situation": "textarea"},
    "emergency_response": {"action": "radio", "requested_groups": "groups", "response": "textarea"},
    "intake": {"multiple_targets": "yesno", "all_targets_have_lead_department": "yesno",
               "lead_department_can_handle_alone": "yesno", "coordination_problem": "yesno",
               "summary": "textarea", "consent": "radio", **NATIONAL_WIDGETS["intake"]},
    "monitoring": {"next": "radio", "progress": "textarea", "new_issues": "textarea"},
    "support_meeting": {"held_on": "date", "participants": "groups", "roles": "table", "decided_policy": "textarea",
                        "minutes": "textarea", "plan_review_held_on": "date", "plan_review_result": "radio",
                        "plan_review_comments": "textarea"},
    "support_plan": {"issues": "textarea", "policy": "textarea", "monitoring_interval": "duration",
                     "participation": "checkbox", "participation_need": "textarea", **NATIONAL_WIDGETS["support_plan"]},
    "participation_match": {"place_id": "integer", "trial_plan": "textarea", "checkin_interval": "duration"},
    "participation_checkin": {"progress": "textarea", "next": "radio"},
    "outreach_referral": {"source": "radio", "household_ref": "text", "amount_yen": "integer",
                          "months_in_arrears": "integer"},
    "outreach_assign": {"summary": "text", "attempt_interval": "duration", "max_attempts": "integer", "priority": "radio",
                        "notes": "textarea"},
    "outreach_contact": {"method": "radio", "joint_group": "group", "attempted_on": "date", "result": "radio",
                         "notes": "textarea"},
    "outreach_home_visit": {"visited_on": "date", "companions": "groups", "situation": "textarea",
                            "needs": "checkboxes", "consent": "radio"},
    "outreach_decision": {"next": "radio", "reason": "textarea", "consultation_group": "group",
                          "consultation": "textarea"},
    "outreach_close": {"close_reason": "radio", "other_agency": "group", "note": "textarea"},
}
SYNTHETIC = {
    "type": "object", "required": ["count", "flag"],
    "properties": {
        "name": {"type": "string", "title": "名前"},
        "count": {"type": "integer", "title": "件数"},
        "ratio": {"type": "number", "title": "割合"},
        "flag": {"type": "boolean", "title": "確認"},
        "optional_flag": {"type": "boolean", "title": "任意の確認"},
        "month": {"type": "string", "title": "月", "oneOf": [{"const": f"m{i}", "title": f"{i}月"} for i in range(1, 13)]},
        "owner": {"type": "string", "format": "group", "title": "担当機関"},
    },
}


def _render(app, schema: dict, values: dict, errors: dict | None = None) -> str:  # noqa: ANN001
    from flask import render_template_string

    from engine.security import users
    from web.extensions import db

    with app.test_request_context("/"):
        groups = users.list_groups(db.session)
        fields = ui_forms.build(schema, values, errors, groups)
        return render_template_string(
            '{% from "ui/_form.html" import field %}<form method="post" action="/x">'
            "{% for f in fields %}{{ field(f) }}{% endfor %}</form>", fields=fields)


def _forms() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "forms").glob("*.json"))}


def test_every_form_has_a_sample_and_its_widgets_are_known() -> None:
    assert set(_forms()) == set(SAMPLES) == set(WIDGETS)
    for key, schema in _forms().items():
        fields = ui_forms.build(schema, {}, {}, [])
        assert {f.path: f.kind for f in fields} == WIDGETS[key], key


@pytest.mark.parametrize("form_key", sorted(SAMPLES))
def test_every_form_renders_with_labels_and_submits_back_the_same_json(app, env, form_key: str) -> None:  # noqa: ANN001
    schema = _forms()[form_key]
    page = _render(app, schema, SAMPLES[form_key])
    for key, prop in schema["properties"].items():
        assert prop["title"] in page, key
        if prop.get("description"):
            assert prop["description"] in page and f'id="f-{key}-help"' in page
        kind = WIDGETS[form_key][key]
        if kind in ("yesno", "radio", "checkboxes", "groups", "duration", "table"):
            assert re.search(rf'<fieldset id="f-{key}"[^>]*>\s*<legend>{re.escape(prop["title"])}', page), key
        elif kind == "checkbox":
            assert f'<label for="f-{key}">' in page
        else:
            assert f'<label for="f-{key}">' in page and f'id="f-{key}"' in page, key
    for key in schema.get("required", []):
        assert re.search(rf'{re.escape(schema["properties"][key]["title"])} <span class="req">必須</span>', page), key
    data = ui_forms.parse(schema, submitted(page, "/x"))
    assert data == SAMPLES[form_key]
    assert engine_forms.validate(schema, data, env.org.group_ids()) == data


def test_widget_kinds_beyond_the_shipped_forms(app, env) -> None:  # noqa: ANN001
    values = {"name": "山田", "count": 3, "ratio": 0.5, "flag": True, "month": "m11", "owner": "jutaku"}
    page = _render(app, SYNTHETIC, values)
    assert re.search(r'<input id="f-count" name="count" type="text" inputmode="numeric"\s+value="3"', page)
    assert 'inputmode="decimal"' in page and '<select id="f-month" name="month"' in page  # 12 choices: a select
    assert '<option value="jutaku" selected>住宅課</option>' in page
    assert re.search(r'<fieldset id="f-flag"', page)  # a required boolean: yes/no
    assert '<input id="f-optional_flag" name="optional_flag" type="checkbox"' in page
    data = ui_forms.parse(SYNTHETIC, submitted(page, "/x"))
    assert data == {**values, "optional_flag": False}
    # what does not parse is kept as typed, for the engine to name and the page to show again
    form = MultiDict({"count": "three", "ratio": "1,5", "flag": "true"})
    data = ui_forms.parse(SYNTHETIC, form)
    assert data["count"] == "three" and data["ratio"] == "1,5"
    from engine.errors import Invalid

    with pytest.raises(Invalid) as err:
        engine_forms.validate(SYNTHETIC, data, env.org.group_ids())
    page = _render(app, SYNTHETIC, data, err.value.fields)
    assert 'value="three"' in page and 'id="f-count-error"' in page and 'id="f-ratio-error"' in page


def test_duration_picker_and_its_free_text_fallback(app) -> None:  # noqa: ANN001
    schema = _forms()["support_plan"]

    def parse(schema, form):  # noqa: ANN001, ANN202 - the plan's checkboxes always parse (unticked: False, [])
        return {k: v for k, v in ui_forms.parse(schema, form).items() if k == "monitoring_interval"}
    assert parse(schema, MultiDict({"monitoring_interval-amount": "14", "monitoring_interval-unit": "D"})) == \
        {"monitoring_interval": "P14D"}
    assert parse(schema, MultiDict({"monitoring_interval-amount": "2", "monitoring_interval-unit": "W",
                                    "monitoring_interval": "p1m2w"})) == {"monitoring_interval": "P1M2W"}
    assert parse(schema, MultiDict({"monitoring_interval-amount": "", "monitoring_interval-unit": "D"})) == {}
    page = _render(app, schema, {"monitoring_interval": "P1M2W"})
    assert re.search(r'<details class="duration__text" open>', page) and 'value="P1M2W"' in page
    page = _render(app, schema, {"monitoring_interval": "P3M"})
    assert 'name="monitoring_interval-amount"' in page and 'value="3"' in page
    assert '<option value="M" selected>か月</option>' in page and "<details class=\"duration__text\">" in page


def test_rows_table_parses_indexed_fields_and_drops_empty_rows() -> None:
    schema = _forms()["support_meeting"]
    form = MultiDict([("roles-3-group", "jutaku"), ("roles-3-role", "住まい"), ("roles-0-group", "choju-anshin"),
                      ("roles-0-role", "介護"), ("roles-1-group", ""), ("roles-1-role", ""), ("roles-10-role", "役割のみ")])
    assert ui_forms.parse(schema, form)["roles"] == [
        {"group": "choju-anshin", "role": "介護"}, {"group": "jutaku", "role": "住まい"}, {"role": "役割のみ"}]


def test_task_page_shows_the_form_and_earlier_steps(staff, at_assessment, session_factory) -> None:  # noqa: ANN001
    sec = staff("secretariat")
    task = only_task(session_factory, at_assessment)
    page = text(sec.get(f"/tasks/{task.id}"))
    assert "<h1>2. アセスメント</h1>" in page and "事務局担当者が案件に関わりがあると判断した" in page
    aside = page.split('<aside class="task-aside"')[1]
    assert "これまでの経過" in aside and "1. 相談・調整" in aside and "佐藤 花子" in aside
    assert "支援対象者が複数" in aside and "はい" in aside and "同意あり" in aside  # titles and choice titles
    assert '<input id="f-members-' in page and "長寿安心課" in page
    assert "完了して次へ進む" in page and "一時保存" in page


def test_invalid_submission_shows_errors_beside_fields_and_keeps_the_input(staff, session_factory) -> None:  # noqa: ANN001
    ref = staff("caseworker")
    case_id = start(ref, "最初の概要")
    task = only_task(session_factory, case_id)
    r = ref.post(f"/tasks/{task.id}", {"ui-action": "complete", "multiple_targets": "false", "consent": "maybe",
                                       "summary": "入力途中の概要\n二行目"})
    assert r.status_code == 422
    page = text(r)
    assert "入力内容を確認してください（4件）" in page and 'id="error-summary"' in page
    for key in ("all_targets_have_lead_department", "lead_department_can_handle_alone", "coordination_problem"):
        assert re.search(rf'<fieldset id="f-{key}"[^>]*aria-describedby="f-{key}-help f-{key}-error" aria-invalid="true"',
                         page), key
        assert f'<p class="field-error" id="f-{key}-error">' in page
        assert f'<a href="#f-{key}">' in page
    assert '<p class="field-error" id="f-consent-error"><span class="visually-hidden">エラー: </span>選択肢から選んでください' \
        in page
    assert 'id="f-summary-error"' not in page and ">入力途中の概要\n二行目</textarea>" in page
    assert re.search(r'id="f-multiple_targets-2" name="multiple_targets" type="radio" value="false" checked', page)
    assert only_task(session_factory, case_id).id == task.id  # nothing moved


def test_invalid_rows_show_the_error_in_the_row(staff, at_assessment, session_factory) -> None:  # noqa: ANN001
    sec = staff("secretariat")
    complete(sec, only_task(session_factory, at_assessment).id,
             MultiDict([("members", "jutaku"), ("assessment", "a")]))
    complete(sec, only_task(session_factory, at_assessment).id,
             MultiDict({"issues": "i", "policy": "p", "monitoring_interval-amount": "1",
                        "monitoring_interval-unit": "M"}))
    task = only_task(session_factory, at_assessment)
    r = sec.post(f"/tasks/{task.id}", MultiDict([
        ("ui-action", "complete"), ("held_on", "2026-13-01"), ("participants", "jutaku"),
        ("roles-0-group", "jutaku"), ("roles-0-role", "住まい"), ("roles-1-role", "機関なし")]))
    assert r.status_code == 422
    page = text(r)
    assert 'id="f-held_on-error"' in page and "日付を YYYY-MM-DD で入力してください" in page
    assert 'value="2026-13-01"' in page
    assert '<p class="field-error" id="f-roles-1-group-error">' in page and 'value="機関なし"' in page
    assert re.search(r'<option value="jutaku" selected>住宅課</option>', page)


def test_without_javascript_a_row_can_be_added(staff, at_assessment, session_factory) -> None:  # noqa: ANN001
    sec = staff("secretariat")
    complete(sec, only_task(session_factory, at_assessment).id, MultiDict([("members", "jutaku"), ("assessment", "a")]))
    complete(sec, only_task(session_factory, at_assessment).id,
             MultiDict({"issues": "i", "policy": "p", "monitoring_interval": "P1M"}))
    task = only_task(session_factory, at_assessment)
    r = sec.post(f"/tasks/{task.id}", {"ui-action": "add-row:roles", "roles-0-group": "jutaku", "roles-0-role": "住まい"})
    assert r.status_code == 200
    page = text(r)
    assert 'name="roles-1-group"' in page and 'value="住まい"' in page and "field-error" not in page


def test_draft_round_trip(staff, session_factory) -> None:  # noqa: ANN001
    ref = staff("caseworker")
    case_id = start(ref, "概要")
    task = only_task(session_factory, case_id)
    r = ref.post(f"/tasks/{task.id}", {"ui-action": "save", "summary": "書きかけ", "consent": "unknown",
                                       "multiple_targets": "true"})
    assert r.status_code == 302 and r.headers["Location"] == f"/tasks/{task.id}"
    page = text(ref.get(r.headers["Location"]))
    assert "一時保存しました" in page and ">書きかけ</textarea>" in page
    assert re.search(r'name="consent" type="radio" value="unknown" checked', page)
    # unticked boxes are answers too (False, none chosen)
    assert only_task(session_factory, case_id).draft == {"summary": "書きかけ", "consent": "unknown",
                                                         "multiple_targets": True, "concerns": [], "applied": False,
                                                         "privacy_acknowledged": False}
    complete(ref, task.id, intake_form())
    assert only_task(session_factory, case_id).step == "assessment"


def test_completing_a_task_claimed_by_someone_else_is_a_conflict(staff, at_assessment, session_factory) -> None:  # noqa: ANN001
    sec, sup = staff("secretariat"), staff("supervisor")
    task = only_task(session_factory, at_assessment)
    sec.post(f"/tasks/{task.id}/claim")
    page = text(sup.get(f"/tasks/{task.id}"))
    assert "田中 一郎 さんが担当しています" in page
    r = sup.post(f"/tasks/{task.id}", MultiDict([("ui-action", "complete"), ("members", "jutaku"), ("assessment", "x")]))
    assert r.status_code == 409
    page = text(r)
    assert "他の職員が先に処理しました" in page and ">x</textarea>" in page


def test_someone_who_may_read_but_not_act_sees_a_read_only_form(staff, session_factory) -> None:  # noqa: ANN001
    ref = staff("caseworker")
    case_id = start(ref, "概要")
    task = only_task(session_factory, case_id)
    page = text(staff("secretariat").get(f"/tasks/{task.id}"))
    assert "閲覧のみできます" in page and "完了して次へ進む" not in page and " disabled" in page


# ---------------------------------------------------------------- case page


def test_case_page_shows_diagram_marks_timeline_and_schedule(staff, at_assessment, session_factory, clock, env) -> None:  # noqa: ANN001
    sec = staff("secretariat")
    for form in (MultiDict([("members", "choju-anshin"), ("assessment", "介護と不登校")]),
                 MultiDict({"issues": "i", "policy": "見守り", "monitoring_interval-amount": "2",
                            "monitoring_interval-unit": "W"}),
                 MultiDict({"held_on": "2026-04-01", "participants": "choju-anshin", "roles-0-group": "choju-anshin",
                            "roles-0-role": "介護サービス調整"})):
        complete(sec, only_task(session_factory, at_assessment).id, form)
    r = sec.get(f"/cases/{at_assessment}")
    page = text(r)
    assert "案件 MA-2026-00001" in page and "対応中" in page and "同意あり" in page
    assert f'data-src="/cases/{at_assessment}/diagram"' in page and "bpmn-navigated-viewer.production.min.js" in page
    progress = page.split('id="progress"')[1].split("</ul>")[0]
    assert re.findall(r'data-step="(\w+)"', progress) == ["intake", "assessment", "plan", "meeting", "monitoring_due"]
    assert 'progress__item--current" data-step="monitoring_due"' in progress
    schedule = page.split('id="schedule"')[1].split("</ul>")[0]
    assert "モニタリング期日" in schedule and "2026-04-15" in schedule  # P2W after 2026-04-01
    timeline = page.split('id="timeline"')[1]
    assert timeline.count('data-kind="task_completed"') == 4
    meeting = timeline.split('data-kind="task_completed" data-step="meeting"')[1].split("</li>")[0]
    assert "役割分担" in meeting and "介護サービス調整" in meeting and "長寿安心課" in meeting
    plan = timeline.split('data-step="plan"')[1].split("</li>")[0]
    assert "2週間（P2W）" in plan
    diagram = sec.get(f"/cases/{at_assessment}/diagram").json
    assert diagram["xml"].startswith("<?xml") and 'id="monitoring_due"' in diagram["xml"]
    assert diagram["done"] == ["intake", "assessment", "plan", "meeting"] and diagram["current"] == ["monitoring_due"]

    clock.advance(days=15)
    assert fire_due(session_factory, env, clock.now()) == 1
    sec = staff("secretariat")
    diagram = sec.get(f"/cases/{at_assessment}/diagram").json
    assert sorted(diagram["current"]) == ["monitoring", "role_report"] and "monitoring_due" in diagram["done"]
    page = text(sec.get(f"/cases/{at_assessment}"))
    assert 'data-kind="timer_fired"' in page and "予定日が到来" in page and "予定されているモニタリングはありません" in page


def test_emergency_links_to_the_multi_agency_case(staff, session_factory) -> None:  # noqa: ANN001
    ref = staff("caseworker")
    em = start(ref, "異臭・応答なし", kind="emergency")
    for form in (MultiDict([("urgency", "high"), ("danger_to", "life"), ("situation", "応答なし")]),
                 MultiDict([("action", "self"), ("response", "訪問")]),
                 MultiDict([("outcome", "入院")]),
                 MultiDict([("continue_support", "true"), ("reason", "退院後の生活")])):
        complete(ref, only_task(session_factory, em).id, form)
    page = text(ref.get(f"/cases/{em}"))
    assert "引継ぎ先" in page and "MA-2026-00001" in page and "終結" in page
    new_id = re.search(r'引継ぎ先</span>\s*<a href="/cases/([^"]+)"', page).group(1)
    page = text(ref.get(f"/cases/{new_id}"))
    assert "引継ぎ元" in page and "EM-2026-00001" in page
    assert "緊急対応の記録" in page and "高" not in page.split("緊急対応の記録")[0][-50:]


def test_outsider_gets_the_same_404_as_for_nothing(staff, at_assessment, session_factory) -> None:  # noqa: ANN001
    outsider = staff("outsider")
    task = only_task(session_factory, at_assessment)
    for url in (f"/cases/{at_assessment}", f"/tasks/{task.id}", f"/cases/{at_assessment}/diagram",
                "/cases/does-not-exist", "/tasks/does-not-exist"):
        r = outsider.get(url)
        assert r.status_code == 404, url
        page = text(r)
        assert "ページが見つかりません" in page and "MA-2026" not in page and "祖母" not in page
    for url in (f"/tasks/{task.id}/claim", f"/tasks/{task.id}"):
        r = outsider.post(url, {"ui-action": "complete"})
        assert r.status_code == 404, url
    assert only_task(session_factory, at_assessment).assignee_id is None
    assert outsider.get("/cases/new/nothing").status_code == 404


# ---------------------------------------------------------------- start pages


def test_start_pages_open_cases_of_both_processes(staff, session_factory) -> None:  # noqa: ANN001
    ref = staff("caseworker")
    page = text(ref.get("/cases/new/consultation"))
    assert "新規相談（多機関協働事業）" in page and "地域包括支援センター" in page and 'name="group"' not in page
    case_id = start(ref, "新しい相談")
    page = text(ref.get(f"/cases/{case_id}"))
    assert "案件 MA-2026-00001 を登録しました" in page and "新しい相談" in page and "1. 相談・調整" in page
    em = start(ref, "独居高齢者宅から異臭", kind="emergency")
    assert only_task(session_factory, em).step == "judge_urgency"
    assert "EM-2026-00001" in text(ref.get(f"/cases/{em}"))


def test_start_page_asks_which_group_when_the_user_has_several(staff) -> None:  # noqa: ANN001
    sec = staff("secretariat")
    page = text(sec.get("/cases/new/consultation"))
    assert '<select id="start-group" name="group"' in page and "地域共生課" in page
    r = sec.post("/cases/new/consultation", {"summary": "概要"})
    assert r.status_code == 422 and 'id="start-group-error"' in text(r) and ">概要</textarea>" in text(r)
    assert start(sec, "概要", group="chiiki-kyosei")
    r = staff("caseworker").post("/cases/new/consultation", {"summary": "概要", "group": "jutaku"})
    assert r.status_code == 403 and "あなたの所属ではありません" in text(r) and "start-group-error" not in text(r)


# ---------------------------------------------------------------- assets


def test_bpmn_js_is_served_locally_and_nothing_else_from_node_modules(app, staff) -> None:  # noqa: ANN001
    client = app.test_client()
    assert client.get("/vendor/bpmn-js/../package.json").status_code == 404
    assert client.get("/vendor/bpmn-js/bpmn-modeler.production.min.js").status_code == 404
    dist = ROOT / "node_modules" / "bpmn-js" / "dist"
    if not dist.exists():
        pytest.skip("bpmn-js is not installed (npm ci)")
    r = client.get("/vendor/bpmn-js/bpmn-navigated-viewer.production.min.js")
    assert r.status_code == 200 and b"BpmnJS" in r.data[:200_000]
    assert client.get("/vendor/bpmn-js/assets/bpmn-js.css").status_code == 200


def test_no_cdn_in_pages_or_scripts() -> None:
    hosts = ("cd" + "n", "un" + "pkg", "jsde" + "livr")  # spelled apart so this file is not a hit itself
    pattern = re.compile(r"https?://[^\s\"']*(" + "|".join(hosts) + ")", re.I)
    for folder in ("web/templates", "web/static", "web/ui"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file():  # the favicon is binary: its bytes are searched all the same
                assert not pattern.search(path.read_bytes().decode("utf-8", errors="replace")), path


def test_timeline_dates_are_japan_time(staff, clock) -> None:  # noqa: ANN001
    clock.set(clock.now().replace(hour=20))  # 20:00 UTC is 05:00 the next day in Japan
    ref = staff("caseworker")
    case_id = start(ref, "夜間の相談")
    assert "2026-04-02 05:00" in text(ref.get(f"/cases/{case_id}"))
    assert timedelta(hours=9)
