"""The case's print view (/cases/<id>/print) as a page: what it holds, its access and audit
(the case page's), and no resident's name in its title or address."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from sqlalchemy import select

from engine.models import AuditRecord, HouseholdMember
from tests.ui.test_pages import complete, intake_form, only_task, start, text

MEETING = {"held_on": "2026-04-20", "participants": ["choju-anshin", "kodomo-sodan"],
           "roles-0-group": "choju-anshin", "roles-0-role": "祖母の介護サービスの調整",
           "roles-1-group": "kodomo-sodan", "roles-1-role": "孫の登校の見守り", "minutes": "学校と月1回連絡する"}


def walk_to_monitoring(staff, session_factory, summary: str = "祖母と孫の二人暮らし") -> str:  # noqa: ANN001
    ref, sec = staff("caseworker"), staff("secretariat")
    case_id = start(ref, summary)
    complete(ref, only_task(session_factory, case_id).id, intake_form(summary))
    complete(sec, only_task(session_factory, case_id).id, {"members": "choju-anshin", "assessment": "介護と不登校"})
    complete(sec, only_task(session_factory, case_id).id, {
        "issues": "祖母の介護と孫の不登校", "policy": "長寿安心課が祖母を、こども相談課が孫を支える",
        "monitoring_interval-amount": "1", "monitoring_interval-unit": "M", "goal_short": "介護サービスの利用開始"})
    meeting = only_task(session_factory, case_id)
    page = text(sec.get(f"/tasks/{meeting.id}"))
    # defect 8: the meeting's policy comes filled in with the plan's, to be changed if the meeting does
    assert re.search(r'name="decided_policy"[^>]*>長寿安心課が祖母を、こども相談課が孫を支える</textarea>', page)
    complete(sec, meeting.id, {**MEETING, "decided_policy": "長寿安心課が祖母を、こども相談課と学校が孫を支える"})
    return case_id


def add_household(session_factory, case_id: str) -> None:  # noqa: ANN001
    with session_factory() as s:
        s.add_all([
            HouseholdMember(case_id=case_id, position=0, name="豊中ハナ", kana="とよなかはな", birth_date=date(1948, 5, 1),
                            sex="female", relation="本人", attributes=["elderly"], department_id="choju-anshin",
                            updated_at=datetime(2026, 4, 1, tzinfo=UTC)),
            HouseholdMember(case_id=case_id, position=1, name="豊中タロウ", kana="とよなかたろう",
                            birth_date=date(2014, 9, 3), sex="male", relation="孫", attributes=["child"],
                            updated_at=datetime(2026, 4, 1, tzinfo=UTC))])
        s.commit()


def test_the_print_view_holds_the_summary_plan_roles_and_meetings(staff, session_factory) -> None:  # noqa: ANN001
    case_id = walk_to_monitoring(staff, session_factory)
    add_household(session_factory, case_id)
    sec = staff("secretariat")
    case_page = text(sec.get(f"/cases/{case_id}"))
    assert f'href="/cases/{case_id}/print"' in case_page  # the case page's print button
    r = sec.get(f"/cases/{case_id}/print")
    assert r.status_code == 200
    page = text(r)
    title = re.search(r"<title>(.*?)</title>", page).group(1)
    assert title.startswith("案件の記録（印刷用） MA-") and "豊中" not in title
    assert "祖母と孫の二人暮らし" in page  # the summary
    assert "豊中ハナ" in page and "とよなかたろう" in page and "高齢" in page and "子ども" in page
    assert "長寿安心課が祖母を、こども相談課が孫を支える" in page and "介護サービスの利用開始" in page  # the plan
    roles = page.split("役割分担（誰が何をするか）")[1].split("</table>")[0]
    assert "祖母の介護サービスの調整" in roles and "孫の登校の見守り" in roles
    meetings = page.split('id="p-meetings"')[1]
    assert "2026-04-20" in meetings and "学校と月1回連絡する" in meetings
    assert "長寿安心課が祖母を、こども相談課と学校が孫を支える" in meetings
    assert '@page' not in page  # the A4 rules are the stylesheet's
    assert 'href="/static/print.css"' in page
    assert "ログイン中" in page and "ログアウト" in page  # the site's header, as on every signed-in page


def test_the_print_view_is_read_as_the_case_page_is(staff, session_factory) -> None:  # noqa: ANN001
    ref = staff("caseworker")
    at_assessment = start(ref, "祖母と孫の二人暮らし")
    complete(ref, only_task(session_factory, at_assessment).id, intake_form("祖母と孫の二人暮らし"))
    outsider = staff("outsider")
    assert outsider.get(f"/cases/{at_assessment}/print").status_code == 404
    assert outsider.get("/cases/no-such-case/print").status_code == 404
    assert ref.get(f"/cases/{at_assessment}/print").status_code == 200
    with session_factory() as s:
        reads = list(s.scalars(select(AuditRecord).where(AuditRecord.action == "case.read")))
    printed = [a for a in reads if (a.detail or {}).get("view") == "print"]
    assert len(printed) == 1 and printed[0].case_id == at_assessment
    page = text(ref.get(f"/cases/{at_assessment}/print"))
    assert "支援プランはまだ作成されていません。" in page and "支援会議の記録はまだありません。" in page
