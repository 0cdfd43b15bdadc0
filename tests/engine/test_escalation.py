"""Escalation of overdue tasks: told once per crossing, to the group's supervisors and then
to the coordination lead, safe with several sweepers; acknowledged by one of the audience."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine.casework import escalation
from engine.errors import Forbidden, NotFound
from engine.models import AuditRecord, CaseEvent, Escalation, HumanTask, OutboxEvent
from engine.security import audit
from engine.status import Audience, EventKind, OutboxKind
from tests.conftest import PG_URL, Personas
from tests.engine.support import Driver, intake


def _assessment_case(driver: Driver, p: Personas) -> tuple[str, HumanTask]:
    """A case at assessment (事務局, limit P5D): its group has a supervisor."""
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    return case_id, driver.task(case_id, "assessment")


def _count(driver: Driver, stmt) -> int:  # noqa: ANN001
    with driver.factory() as s:
        return s.scalar(stmt) or 0


def _escalations(driver: Driver, task_id: str) -> list[Escalation]:
    with driver.factory() as s:
        return list(s.scalars(select(Escalation).where(Escalation.task_id == task_id).order_by(Escalation.level)))


def _sweep(driver: Driver) -> int:
    return escalation.escalate_due(driver.factory, driver.env, driver.clock.now())


def test_no_escalation_before_the_limit(driver: Driver, personas: Personas) -> None:
    case_id, task = _assessment_case(driver, personas)
    driver.clock.set(task.due_at - timedelta(seconds=1))
    assert _sweep(driver) == 0
    assert _escalations(driver, task.id) == []
    assert driver.history(case_id, EventKind.TASK_ESCALATED) == []
    with driver.factory() as s:
        assert escalation.list_escalations(s, driver.user(s, personas.supervisor)) == ([], 0)


def test_overdue_task_goes_to_its_groups_supervisors_once_over_many_sweeps(driver: Driver,
                                                                          personas: Personas) -> None:
    p = personas
    case_id, task = _assessment_case(driver, p)
    driver.clock.set(task.due_at + timedelta(minutes=1))
    assert _sweep(driver) == 1
    for _ in range(5):
        driver.clock.advance(hours=1)
        assert _sweep(driver) == 0
    (item,) = _escalations(driver, task.id)
    assert (item.level, item.audience, item.group_id) == (1, Audience.SUPERVISOR, "secretariat")
    (event,) = driver.history(case_id, EventKind.TASK_ESCALATED)
    assert event.step == "assessment" and event.data["level"] == 1
    outbox = _count(driver, select(func.count()).select_from(OutboxEvent).where(
        OutboxEvent.case_id == case_id, OutboxEvent.kind == OutboxKind.CASE_ESCALATED))
    assert outbox == 1
    trail = _count(driver, select(func.count()).select_from(AuditRecord).where(
        AuditRecord.case_id == case_id, AuditRecord.action == audit.Action.TASK_ESCALATE))
    assert trail == 1
    with driver.factory() as s:
        items, total = escalation.list_escalations(s, driver.user(s, p.supervisor))
        assert total == 1 and items[0].task_id == task.id and items[0].case_number
        # the coordination lead is not told at level 1 when the group has a supervisor
        assert escalation.list_escalations(s, driver.user(s, p.lead)) == ([], 0)
        with pytest.raises(Forbidden):
            escalation.list_escalations(s, driver.user(s, p.secretariat))


def test_second_threshold_goes_to_the_coordination_lead(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id, task = _assessment_case(driver, p)
    limit = task.due_at - task.created_at
    driver.clock.set(task.due_at + timedelta(minutes=1))
    assert _sweep(driver) == 1
    # twice the limit after the task was created, not yet
    driver.clock.set(task.created_at + 2 * limit - timedelta(minutes=1))
    assert _sweep(driver) == 0
    driver.clock.set(task.created_at + 2 * limit + timedelta(minutes=1))
    assert _sweep(driver) == 1
    assert _sweep(driver) == 0
    levels = [(e.level, e.audience) for e in _escalations(driver, task.id)]
    assert levels == [(1, Audience.SUPERVISOR), (2, Audience.COORDINATION_LEAD)]
    assert [e.data["level"] for e in driver.history(case_id, EventKind.TASK_ESCALATED)] == [1, 2]
    with driver.factory() as s:
        items, _ = escalation.list_escalations(s, driver.user(s, p.lead))
        assert [i.level for i in items] == [2]


def test_group_without_supervisor_goes_to_the_coordination_lead_at_once(driver: Driver,
                                                                       personas: Personas) -> None:
    p = personas
    case_id = driver.start(p.caseworker)  # intake: 地域包括支援センター, no supervisor there
    task = driver.task(case_id, "intake")
    driver.clock.set(task.due_at + timedelta(minutes=1))
    assert _sweep(driver) == 1
    (item,) = _escalations(driver, task.id)
    assert (item.level, item.audience, item.group_id) == (1, Audience.COORDINATION_LEAD, "hokatsu-center")
    assert driver.history(case_id, EventKind.TASK_ESCALATED)[0].data["reason"] == "no_supervisor"


def test_completed_task_is_not_escalated(driver: Driver, personas: Personas) -> None:
    case_id = driver.start(personas.caseworker)
    task = driver.task(case_id, "intake")
    driver.complete(personas.caseworker, task.id, intake())
    driver.clock.set(task.due_at + timedelta(days=30))
    _sweep(driver)
    assert _escalations(driver, task.id) == []


def test_acknowledge_is_recorded_once_and_only_by_the_audience(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id, task = _assessment_case(driver, p)
    driver.clock.set(task.due_at + timedelta(minutes=1))
    _sweep(driver)
    (item,) = _escalations(driver, task.id)
    now = driver.clock.now()
    with pytest.raises(NotFound), driver.factory() as s:
        escalation.acknowledge(s, driver.env, driver.user(s, p.lead), item.id, None, now)
    with pytest.raises(Forbidden), driver.factory() as s:
        escalation.acknowledge(s, driver.env, driver.user(s, p.caseworker), item.id, None, now)
    with driver.factory() as s:
        done = escalation.acknowledge(s, driver.env, driver.user(s, p.supervisor), item.id, "担当を調整", now)
    assert done.acknowledged_by == p.supervisor.name and done.note == "担当を調整"
    with driver.factory() as s:
        escalation.acknowledge(s, driver.env, driver.user(s, p.supervisor), item.id, None, now)
        assert escalation.list_escalations(s, driver.user(s, p.supervisor)) == ([], 0)
        _, total = escalation.list_escalations(s, driver.user(s, p.supervisor), include_acknowledged=True)
        assert total == 1
    (event,) = driver.history(case_id, EventKind.ESCALATION_ACKNOWLEDGED)
    assert event.actor_id == p.supervisor.id
    assert _count(driver, select(func.count()).select_from(AuditRecord).where(
        AuditRecord.action == audit.Action.ESCALATION_ACKNOWLEDGE)) == 1


SWEEPERS = 4
TASKS = 40 if PG_URL else 12


def test_several_sweepers_at_once_tell_each_crossing_exactly_once(driver: Driver, personas: Personas) -> None:
    p = personas
    tasks = [_assessment_case(driver, p)[1] for _ in range(TASKS)]
    driver.clock.set(max(t.due_at for t in tasks) + timedelta(minutes=1))
    now = driver.clock.now()
    told: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(SWEEPERS)

    def run() -> None:
        try:
            start.wait()
            told.append(escalation.escalate_due(driver.factory, driver.env, now))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(SWEEPERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(told) == TASKS
    assert _count(driver, select(func.count()).select_from(Escalation)) == TASKS
    assert _count(driver, select(func.count()).select_from(CaseEvent).where(
        CaseEvent.kind == EventKind.TASK_ESCALATED)) == TASKS
    assert _count(driver, select(func.count()).select_from(OutboxEvent).where(
        OutboxEvent.kind == OutboxKind.CASE_ESCALATED)) == TASKS
    with driver.factory() as s:
        assert audit.verify(s).ok  # the sweepers' records form one unbroken chain
