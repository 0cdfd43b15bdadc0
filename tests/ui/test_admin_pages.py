"""Issue 3 in the pages: consent on the case page, sharing only with consent, user
administration, the audit trail search and CSV export, and the caller's API tokens."""

from __future__ import annotations

from sqlalchemy import select

from engine.casework import cases
from engine.models import AuditRecord
from engine.security import audit
from tests.ui.test_page_access import same_page
from tests.ui.test_pages import text

INTAKE = {"multiple_targets": True, "all_targets_have_lead_department": False,
          "lead_department_can_handle_alone": False, "coordination_problem": False,
          "summary": "山田花子さん宅の相談", "consent": "not_given"}


def _case(session, env, personas, clock) -> str:  # noqa: ANN001
    case = cases.start_case(session, env, personas.caseworker, "multi_agency", {"summary": "相談"}, None, clock.now())
    (task,) = cases.case_open_tasks(session, case)
    cases.complete_task(session, env, personas.caseworker, task.id, INTAKE, clock.now())
    return case.id


def test_case_page_shows_consent_and_who_recorded_it(staff, session, env, personas, clock) -> None:  # noqa: ANN001
    case_id = _case(session, env, personas, clock)
    page = text(staff("secretariat").get(f"/cases/{case_id}"))
    assert "本人同意" in page and "同意なし" in page and "佐藤 花子" in page
    assert "本人同意が「同意あり」でないため共有できません" in page


def test_sharing_waits_for_consent(staff, session, env, personas, clock) -> None:  # noqa: ANN001
    case_id = _case(session, env, personas, clock)
    sec, outsider = staff("secretariat"), staff("outsider")
    share = {"group": "wakamono-sodan", "purpose": "重層的支援会議での評価"}
    r = sec.post(f"/cases/{case_id}/shares", share)
    assert r.status_code == 302 and "共有できません" in text(sec.get(r.headers["Location"]))
    assert outsider.get(f"/cases/{case_id}").status_code == 404
    sec.post(f"/cases/{case_id}/consent", {"consent": "given"})
    r = sec.post(f"/cases/{case_id}/shares", share)
    assert "若者支援総合相談窓口 と共有しました" in text(sec.get(r.headers["Location"]))
    assert outsider.get(f"/cases/{case_id}").status_code == 200


def test_admin_changes_roles_and_groups(staff, session, personas) -> None:  # noqa: ANN001
    admin = staff("admin")
    page = text(admin.get("/admin/users"))
    assert "wakamono.ito" in page and "スーパーバイザー" in page
    r = admin.post("/admin/users/wakamono.ito", {"roles": ["staff", "supervisor"],
                                                  "groups": ["wakamono-sodan", "jutaku"], "active": "on"})
    assert r.status_code == 302
    session.expire_all()
    assert personas.outsider.roles == ["staff", "supervisor"]
    assert personas.outsider.group_ids == ["jutaku", "wakamono-sodan"]
    assert staff("secretariat").get("/admin/users").status_code == 403


def test_lead_searches_the_trail_and_exports_csv(staff, session, env, personas, clock) -> None:  # noqa: ANN001
    case_id = _case(session, env, personas, clock)
    number = cases.get_case(session, env, personas.secretariat, case_id).number
    lead = staff("lead")
    page = text(lead.get("/admin/audit", query_string={"case": number}))
    assert "作業の完了" in page and "案件の登録" in page and "佐藤 花子" in page and "hokatsu.sato" in page
    csv = lead.get("/admin/audit.csv", query_string={"case": number, "since": clock.now().date().isoformat()})
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    body = csv.get_data(as_text=True)
    assert body.startswith("\ufeffseq,") and number in body
    assert "task.complete" in body and "作業の完了" in body  # codes for machines, labels for people
    bad = lead.get("/admin/audit", query_string={"since": "yesterday"})
    assert "YYYY-MM-DD" in text(bad)
    assert audit.verify(session).ok


def test_tokens_listed_and_revoked_from_the_page(staff, api, personas) -> None:  # noqa: ANN001
    client = staff("caseworker")
    page = text(client.get("/account/tokens"))
    assert "有効" in page
    token_id = api("caseworker").get("/api/tokens").json[0]["id"]
    client.post(f"/account/tokens/{token_id}/revoke")
    assert api("caseworker").get("/api/me").status_code == 401


def test_queue_read_is_audited_and_sign_in_recorded(staff, session, env, personas, clock) -> None:  # noqa: ANN001
    _case(session, env, personas, clock)
    staff("secretariat").get("/")
    session.rollback()  # a fresh snapshot: the pages wrote through their own connection
    actions = [r.action for r in session.scalars(select(AuditRecord).where(
        AuditRecord.actor_name == "kyosei.tanaka").order_by(AuditRecord.seq))]
    assert "signin.ok" in actions and "queue.read" in actions[actions.index("signin.ok"):]


def _records(session, after: int = 0) -> list[AuditRecord]:  # noqa: ANN001
    session.rollback()  # a fresh snapshot: the pages wrote through their own connection
    return list(session.scalars(select(AuditRecord).where(AuditRecord.seq > after).order_by(AuditRecord.seq)))


def test_a_case_page_view_is_one_read(staff, session, env, personas, clock) -> None:  # noqa: ANN001
    """One read of the case, and one of each list of its case file the page shows (support
    records, documents: every read of them is audited); the diagram it loads next adds none."""
    case_id = _case(session, env, personas, clock)
    sec = staff("secretariat")
    before = _records(session)[-1].seq
    assert sec.get(f"/cases/{case_id}").status_code == 200
    assert sec.get(f"/cases/{case_id}/diagram").status_code == 200  # what the page loads next
    assert sorted((r.action, r.actor_name) for r in _records(session, before)) == [
        ("attachment.list", "kyosei.tanaka"), ("case.read", "kyosei.tanaka"), ("note.list", "kyosei.tanaka")]


def test_a_hidden_case_page_is_recorded_as_denied_and_looks_missing(staff, session, env, personas, clock) -> None:  # noqa: ANN001
    case_id = _case(session, env, personas, clock)
    (task,) = cases.case_open_tasks(session, cases.get_case(session, env, personas.secretariat, case_id))
    outsider = staff("outsider")
    before = _records(session)[-1].seq
    ghost = "00000000-0000-4000-8000-000000000000"
    for url in ("/cases/{}", "/cases/{}/diagram", "/tasks/{}"):
        hidden, missing = outsider.get(url.format(case_id if "cases" in url else task.id)), outsider.get(url.format(ghost))
        assert hidden.status_code == missing.status_code == 404
        assert same_page(hidden, missing), url
    rows = _records(session, before)
    assert [(r.action, r.actor_name, r.case_id, r.detail["via"]) for r in rows] == [
        ("access.denied", "wakamono.ito", case_id, "case.read"), ("access.denied", "wakamono.ito", case_id, "case.read"),
        ("access.denied", "wakamono.ito", case_id, "task.read")]


def test_the_audit_page_speaks_in_labels_and_names(staff, session, env, personas, clock) -> None:  # noqa: ANN001
    case_id = _case(session, env, personas, clock)
    number = cases.get_case(session, env, personas.secretariat, case_id).number
    (task,) = cases.case_open_tasks(session, cases.get_case(session, env, personas.secretariat, case_id))
    cases.assign_task(session, env, personas.supervisor, task.id, "kyosei.tanaka", clock.now())
    staff("outsider").get(f"/cases/{case_id}")
    lead = staff("lead")
    page = text(lead.get("/admin/audit", query_string={"case": number}))
    for words in ("作業の割り当て", "担当者:</span> 田中 一郎（kyosei.tanaka）", f"工程:</span> {task.name}",
                  f"作業ID:</span> {task.id}", "アクセスの拒否", "試みた操作:</span> 案件の閲覧",
                  "プロセス:</span> 多機関協働事業", "機関:</span> 地域包括支援センター"):
        assert words in page, words
    for raw in ("task.assign", "access.denied", "case.read", '"task_id"', "{&#34;"):
        assert raw not in page, raw
    mine = text(lead.get("/admin/audit", query_string={"user": "jicho.yamada"}))
    assert "アクセス記録の検索" in mine and f"検索条件:</span> 最大件数 = 500、案件番号 = {number}" in mine
    lead.post("/lang", {"lang": "en"})
    english = text(lead.get("/admin/audit", query_string={"case": number}))
    for words in ("Task assigned", "Access denied", "Attempted:</span> Case viewed",
                  "Assignee:</span> 田中 一郎 (kyosei.tanaka)"):
        assert words in english, words


def test_every_audit_action_has_a_label() -> None:
    assert set(audit.actions()) == set(audit.LABELS)
    assert all(ja and en and ja != en for ja, en in audit.LABELS.values())
# ---------------------------------------------------------------- sessions and password (issue 8)

WINDOWS_CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def _session_ids(page: str) -> list[int]:
    import re

    return [int(n) for n in re.findall(r'action="/sessions/(\d+)/end"', page)]


def test_a_user_sees_their_sessions_and_ends_another_one(staff) -> None:  # noqa: ANN001
    office = staff()
    office.client.environ_base.update(REMOTE_ADDR="10.20.0.5", HTTP_USER_AGENT=WINDOWS_CHROME)
    assert office.login("hokatsu.sato").status_code == 302
    laptop = staff("caseworker")
    page = text(laptop.get("/account/tokens"))
    assert "ログイン中のセッション" in page and "Chrome / Windows" in page and "10.20.0.5" in page
    assert page.count('class="badge">この端末<') == 1
    ids = _session_ids(page)
    assert len(ids) == 2
    current = laptop.client.get_cookie("tsunagu_session").value
    r = laptop.post(f"/sessions/{min(ids)}/end")  # the office one, signed in first
    assert r.status_code == 302 and "/account/tokens" in r.headers["Location"]
    assert office.get("/").status_code == 302
    assert "このセッションは終了されました" in text(office.get("/login"))
    assert laptop.get("/").status_code == 200 and laptop.client.get_cookie("tsunagu_session").value == current


def test_ending_the_session_in_use_signs_out(staff) -> None:  # noqa: ANN001
    client = staff("caseworker")
    (only,) = _session_ids(text(client.get("/account/tokens")))
    r = client.post(f"/sessions/{only}/end")
    assert r.headers["Location"].endswith("/login") and client.get("/").status_code == 302


def test_others_cannot_end_my_session(staff) -> None:  # noqa: ANN001
    mine = staff("caseworker")
    (sid,) = _session_ids(text(mine.get("/account/tokens")))
    r = staff("outsider").post(f"/sessions/{sid}/end")
    assert r.status_code == 404
    assert mine.get("/").status_code == 200


def test_an_administrator_ends_a_users_session(staff) -> None:  # noqa: ANN001
    victim = staff("outsider")
    admin = staff("admin")
    page = text(admin.get("/admin/users/wakamono.ito/sessions"))
    (sid,) = _session_ids(page)
    r = admin.post(f"/sessions/{sid}/end", {"next": "/admin/users/wakamono.ito/sessions"})
    assert r.headers["Location"] == "/admin/users/wakamono.ito/sessions"
    assert victim.get("/").status_code == 302
    assert admin.get("/").status_code == 200


def test_changing_the_password_on_the_page_ends_the_other_sessions(staff) -> None:  # noqa: ANN001
    from tests.ui.conftest import PASSWORD

    other = staff("caseworker")
    client = staff("caseworker")
    r = client.post("/account/password", {"current_password": PASSWORD, "password": "short"})
    assert "10 文字以上" in text(client.get(r.headers["Location"]))
    assert other.get("/").status_code == 200
    r = client.post("/account/password", {"current_password": "wrong", "password": "a new long passphrase"})
    assert "現在のパスワードが正しくありません" in text(client.get(r.headers["Location"]))
    r = client.post("/account/password", {"current_password": PASSWORD, "password": "a new long passphrase"})
    assert "パスワードを変更しました" in text(client.get(r.headers["Location"]))
    assert client.get("/").status_code == 200 and other.get("/").status_code == 302
    assert staff().login("hokatsu.sato", "a new long passphrase").status_code == 302


def test_disabling_a_user_on_the_page_ends_their_session(staff) -> None:  # noqa: ANN001
    victim = staff("outsider")
    staff("admin").post("/admin/users/wakamono.ito", {"roles": ["staff"], "groups": ["wakamono-sodan"]})
    assert victim.get("/").status_code == 302
