"""Role holders follow their roles (issue 12): the groups given a role at the support meeting
see the case among their roles and report at each monitoring round, in their own queue; the
secretariat sees which reports are in and which are awaited, and may decide without them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.casework import cases, role_holders
from engine.errors import Forbidden, NotFound
from engine.models import AuditRecord, CaseMember, OutboxEvent
from engine.status import EventKind, OutboxKind, TaskState
from tests.conftest import Personas
from tests.engine.support import ASSESSMENT, ROLE_REPORT, Driver, intake, monitoring, plan

MEETING = {"held_on": "2026-04-20", "participants": ["choju-anshin", "kurashi-shien"],
           "roles": [{"group": "choju-anshin", "role": "母の介護サービスの調整"},
                     {"group": "kurashi-shien", "role": "息子の就労相談"},
                     {"group": "choju-anshin", "role": "月1回の訪問"}]}


def _held(driver: Driver, p: Personas, meeting: dict | None = None) -> str:
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, case_id, "plan", plan("P14D"))
    driver.complete_step(p.secretariat, case_id, "meeting", meeting or MEETING)
    return case_id


def _round(driver: Driver, case_id: str) -> None:
    driver.clock.advance(days=14, minutes=1)
    assert driver.fire() == 1


def test_the_meeting_gives_each_group_its_role(driver: Driver, personas: Personas) -> None:
    case_id = _held(driver, personas)
    with driver.factory() as s:
        members = {m.group_id: m.role for m in s.scalars(select(CaseMember).where(CaseMember.case_id == case_id))}
    assert members == {"choju-anshin": "母の介護サービスの調整、月1回の訪問", "kurashi-shien": "息子の就労相談"}


def test_a_role_holder_sees_its_roles_with_the_cases_current_step(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = _held(driver, p)
    with driver.factory() as s:
        (held,) = role_holders.held_roles(s, driver.env, driver.user(s, p.elder_care), driver.clock.now())
    assert (held.case_id, held.group_id, held.role) == (case_id, "choju-anshin", "母の介護サービスの調整、月1回の訪問")
    assert held.current_steps == ["モニタリング期日"] and held.report_task_id is None
    _round(driver, case_id)
    with driver.factory() as s:
        (held,) = role_holders.held_roles(s, driver.env, driver.user(s, p.elder_care), driver.clock.now())
        assert held.current_steps == ["5. モニタリング"]
        assert held.report_task_id == next(t.id for t in driver.open_tasks(case_id)
                                           if t.step == "role_report" and t.group_id == "choju-anshin")
        # An agency holding no role in any case has none to list.
        assert role_holders.held_roles(s, driver.env, driver.user(s, p.outsider)) == []
        # The listing is an audited read of the cases it names.
        entry = s.scalars(select(AuditRecord).order_by(AuditRecord.seq.desc())).first()
        assert entry.action == "case.list" and driver.case(case_id).number in entry.detail["cases"]


def test_each_monitoring_round_asks_each_role_holder_for_a_report(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = _held(driver, p)
    _round(driver, case_id)
    reports = [t for t in driver.open_tasks(case_id) if t.step == "role_report"]
    assert sorted(t.group_id for t in reports) == ["choju-anshin", "kurashi-shien"]
    assert all(t.due_at == driver.clock.now() + timedelta(days=5) for t in reports)
    assert all(t.name == "モニタリング：役割の報告" for t in reports)
    with driver.factory() as s:
        created = [e.payload for e in s.scalars(select(OutboxEvent).where(OutboxEvent.kind == OutboxKind.TASK_CREATED))
                   if e.payload.get("step") == "role_report"]
        assert sorted(e["group"] for e in created) == ["choju-anshin", "kurashi-shien"]
        assert [t.step for t in cases.list_tasks(s, driver.user(s, p.elder_care))] == ["role_report"]
    mine = next(t for t in reports if t.group_id == "choju-anshin")
    theirs = next(t for t in reports if t.group_id == "kurashi-shien")
    with pytest.raises((Forbidden, NotFound)):
        driver.complete(p.elder_care, theirs.id, ROLE_REPORT)
    driver.complete(p.elder_care, mine.id, ROLE_REPORT)
    (done,) = [e for e in driver.completions(case_id) if e.step == "role_report"]
    assert done.actor_id == p.elder_care.id and done.data == ROLE_REPORT
    driver.check(case_id)

    monitoring_task = driver.task(case_id, "monitoring")
    with driver.factory() as s:
        listed = role_holders.round_reports(s, driver.env, s.get(type(monitoring_task), monitoring_task.id))
    assert [(r.group_id, r.state) for r in listed] == [("kurashi-shien", TaskState.OPEN),
                                                      ("choju-anshin", TaskState.COMPLETED)]
    assert listed[1].data == ROLE_REPORT and listed[1].role == "母の介護サービスの調整、月1回の訪問"


def test_the_secretariat_may_decide_without_the_awaited_reports(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = _held(driver, p)
    _round(driver, case_id)
    driver.complete_step(p.secretariat, case_id, "monitoring", monitoring("continue"))
    # The awaited reports are withdrawn with the round, recorded as such; the next round asks again.
    assert driver.open_steps(case_id) == []
    cancelled = [e for e in driver.history(case_id, EventKind.TASK_CANCELLED) if e.step == "role_report"]
    assert len(cancelled) == 2
    driver.check(case_id)
    _round(driver, case_id)
    assert driver.open_steps(case_id) == ["monitoring", "role_report", "role_report"]
    driver.check(case_id)


def test_reports_in_before_the_decision_leave_the_monitoring_alone(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = _held(driver, p, {"held_on": "2026-04-20", "participants": ["choju-anshin"],
                                "roles": [{"group": "choju-anshin", "role": "見守り"}]})
    _round(driver, case_id)
    driver.complete(p.elder_care, driver.task(case_id, "role_report").id, ROLE_REPORT)
    assert driver.open_steps(case_id) == ["monitoring"]
    driver.complete_step(p.secretariat, case_id, "monitoring", monitoring("close"))
    assert driver.open_steps(case_id) == ["closure"]
    driver.check(case_id)


def test_a_later_meeting_changes_who_holds_a_role(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = _held(driver, p)
    _round(driver, case_id)
    driver.complete_step(p.secretariat, case_id, "monitoring", monitoring("meeting"))
    driver.complete_step(p.secretariat, case_id, "meeting",
                         {"held_on": "2026-05-20", "participants": ["kurashi-shien"],
                          "roles": [{"group": "kurashi-shien", "role": "家計の見直し"}]})
    with driver.factory() as s:
        members = {m.group_id: m.role for m in s.scalars(select(CaseMember).where(CaseMember.case_id == case_id))}
        assert members == {"choju-anshin": None, "kurashi-shien": "家計の見直し"}
        assert role_holders.held_roles(s, driver.env, driver.user(s, p.elder_care)) == []
    _round(driver, case_id)
    (report,) = [t for t in driver.open_tasks(case_id) if t.step == "role_report"]
    assert report.group_id == "kurashi-shien"
