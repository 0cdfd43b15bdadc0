"""Process A (多機関協働事業) walked end to end through the domain functions.

Every command runs in a fresh session, so each step starts from the state stored by the
previous one; after every step the stored state is checked to survive a load/dump
round trip and to agree with the task and timer rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from engine.casework import cases
from engine.errors import Conflict
from engine.models import CaseMember, OutboxEvent, User
from engine.status import CaseStatus, EventKind, OutboxKind, TaskState, TimerStatus
from engine.workflow import runtime
from tests.conftest import Personas
from tests.engine.support import (
    ASSESSMENT,
    CLOSURE,
    Driver,
    intake,
    meeting,
    monitoring,
    plan,
)

Completion = tuple[str, int, datetime, dict[str, Any]]


class Walk:
    """Completes steps of one case, checking the case after each, and remembers what it did."""

    def __init__(self, driver: Driver, case_id: str) -> None:
        self.d = driver
        self.case_id = case_id
        self.done: list[Completion] = []
        self.fired = 0

    def step(self, who: User, step: str, data: dict[str, Any], expect_open: list[str]) -> None:
        self.d.clock.advance(hours=5)
        task = self.d.task(self.case_id, step)
        self.d.complete(who, task.id, data)
        self.done.append((step, who.id, self.d.clock.now(), data))
        row = self.d.task_row(task.id)
        assert row.state == TaskState.COMPLETED
        assert row.completed_by_id == who.id
        assert row.completed_at == self.d.clock.now()
        assert self.d.open_steps(self.case_id) == expect_open
        self.d.check(self.case_id)

    def wait_for_monitoring(self, interval: timedelta) -> None:
        """The case waits on its monitoring timer: nothing early, monitoring after it."""
        assert self.d.open_steps(self.case_id) == []
        (timer,) = self.d.timers(self.case_id, TimerStatus.PENDING)
        assert timer.step == "monitoring_due"
        assert timer.due_at == self.d.clock.now() + interval
        self.d.clock.set(timer.due_at - timedelta(minutes=1))
        assert self.d.fire() == 0
        assert self.d.open_steps(self.case_id) == []
        self.d.clock.set(timer.due_at + timedelta(minutes=1))
        assert self.d.fire() == 1
        self.fired += 1
        # The secretariat's decision, and a report asked of each group holding a role.
        with self.d.factory() as s:
            holders = sorted(m.group_id for m in s.scalars(select(CaseMember).where(
                CaseMember.case_id == self.case_id, CaseMember.role.is_not(None))))
        assert self.d.open_steps(self.case_id) == ["monitoring"] + ["role_report"] * len(holders)
        assert sorted(t.group_id for t in self.d.open_tasks(self.case_id) if t.step == "role_report") == holders
        assert self.d.timers(self.case_id, TimerStatus.PENDING) == []
        monitoring_task = self.d.task(self.case_id, "monitoring")
        assert monitoring_task.created_at == self.d.clock.now()
        self.d.check(self.case_id)


def test_multi_agency_walk_through_every_monitoring_outcome_to_closure(driver: Driver, personas: Personas) -> None:
    p = personas
    start = driver.clock.now()
    case_id = driver.start(p.caseworker, "multi_agency")
    case = driver.case(case_id)
    assert case.status == CaseStatus.ACTIVE
    assert case.number == "MA-2026-00001"
    assert case.referring_group_id == "hokatsu-center"
    assert driver.open_steps(case_id) == ["intake"]
    first = driver.task(case_id, "intake")
    assert (first.group_id, first.lane, first.form_key) == ("hokatsu-center", "つなぎ元", "intake")
    assert first.created_at == start and first.due_at == start + timedelta(days=3)
    driver.check(case_id)

    walk = Walk(driver, case_id)
    walk.step(p.caseworker, "intake", intake(), ["assessment"])
    assessment = driver.task(case_id, "assessment")
    assert (assessment.group_id, assessment.lane) == ("secretariat", "事務局")
    assert driver.ready_data(case_id, "assessment")["decision"] == "eligible"

    walk.step(p.secretariat, "assessment", ASSESSMENT, ["plan"])
    walk.step(p.secretariat, "plan", plan("P14D"), ["meeting"])
    walk.step(p.supervisor, "meeting", meeting("choju-anshin", "kurashi-shien"), [])
    walk.wait_for_monitoring(timedelta(days=14))

    # continue: the timer runs again
    walk.step(p.secretariat, "monitoring", monitoring("continue"), [])
    walk.wait_for_monitoring(timedelta(days=14))

    # reassess: back to assessment, then plan (a new interval) and meeting
    walk.step(p.secretariat, "monitoring", monitoring("reassess"), ["assessment"])
    walk.step(p.secretariat, "assessment", ASSESSMENT, ["plan"])
    walk.step(p.secretariat, "plan", plan("P21D"), ["meeting"])
    walk.step(p.secretariat, "meeting", meeting("choju-anshin"), [])
    walk.wait_for_monitoring(timedelta(days=21))

    # meeting: back to the support meeting, then monitoring again
    walk.step(p.secretariat, "monitoring", monitoring("meeting"), ["meeting"])
    walk.step(p.secretariat, "meeting", meeting("shogai-fukushi"), [])  # keeps the new interval
    walk.wait_for_monitoring(timedelta(days=21))

    # close: closure, then the case is completed
    walk.step(p.secretariat, "monitoring", monitoring("close"), ["closure"])
    walk.step(p.secretariat, "closure", CLOSURE, [])

    case = driver.case(case_id)
    assert case.status == CaseStatus.COMPLETED
    assert case.completed_at == driver.clock.now()
    assert driver.timers(case_id, TimerStatus.PENDING) == []
    assert driver.open_tasks(case_id) == []

    # One history row per completion, with who, when and the submitted data.
    completions = driver.completions(case_id)
    assert [(e.step, e.actor_id, e.at, e.data) for e in completions] == walk.done
    assert len(driver.history(case_id, EventKind.TIMER_FIRED)) == walk.fired == 4
    assert len(driver.history(case_id, EventKind.CASE_COMPLETED)) == 1
    assert len(driver.history(case_id, EventKind.CASE_STARTED)) == 1
    created = driver.history(case_id, EventKind.TASK_CREATED)
    # Every task created was completed, but the role reports this walk never sent: each was
    # withdrawn when the secretariat decided its round without it.
    cancelled = driver.history(case_id, EventKind.TASK_CANCELLED)
    assert {e.step for e in cancelled} == {"role_report"}
    assert len(created) == len(completions) + len(cancelled)
    steps = [e.step for e in completions]
    assert steps == ["intake", "assessment", "plan", "meeting", "monitoring", "monitoring", "assessment", "plan",
                     "meeting", "monitoring", "meeting", "monitoring", "closure"]


def test_every_step_starts_from_the_stored_state(driver: Driver, personas: Personas) -> None:
    """What a step sees is what the previous step stored: data entered at intake is in
    the data of the monitoring task, after the timer fired in another session."""
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, case_id, "plan", plan("P7D"))
    driver.complete_step(p.secretariat, case_id, "meeting", meeting())
    driver.clock.advance(days=8)
    assert driver.fire() == 1
    data = driver.ready_data(case_id, "monitoring")
    for key, value in {**intake(), **ASSESSMENT, **plan("P7D"), **meeting(), "decision": "eligible"}.items():
        assert data[key] == value


def test_round_trip_keeps_ready_tasks_and_data_at_each_step(driver: Driver, personas: Personas) -> None:
    """runtime.load then runtime.dump of the stored state gives the same workflow."""
    p = personas
    case_id = driver.start(p.caseworker)
    for who, step, data in [(p.caseworker, "intake", intake()), (p.secretariat, "assessment", ASSESSMENT),
                            (p.secretariat, "plan", plan())]:
        case = driver.case(case_id)
        defn = driver.env.specs.for_case(case)
        wf = runtime.load(defn, case.state, case.serializer_version)
        before = {str(t.id): dict(t.data) for t in runtime.ready_user_tasks(wf)}
        wf2 = runtime.load(defn, runtime.dump(wf), runtime.SERIALIZER_VERSION)
        assert {str(t.id): dict(t.data) for t in runtime.ready_user_tasks(wf2)} == before
        assert [t.id for t in driver.open_tasks(case_id)] == list(before)
        driver.complete_step(who, case_id, step, data)


def test_case_row_and_members_follow_the_completed_forms(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake(consent="given"))
    case = driver.case(case_id)
    assert case.summary == intake()["summary"]
    assert case.consent == "given"
    driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, case_id, "plan", plan())
    driver.complete_step(p.secretariat, case_id, "meeting", meeting("choju-anshin", "kurashi-shien"))
    with driver.factory() as s:
        members = {m.group_id for m in s.query(CaseMember).filter(CaseMember.case_id == case_id)}
        kinds = [o.kind for o in s.query(OutboxEvent).filter(OutboxEvent.case_id == case_id).order_by(OutboxEvent.id)]
    assert members == {"choju-anshin", "kurashi-shien"}
    assert kinds[0] == OutboxKind.CASE_CREATED
    assert kinds.count(OutboxKind.TASK_COMPLETED) == 4
    assert kinds.count(OutboxKind.TASK_CREATED) == 4


def test_completed_task_cannot_be_completed_again(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    task = driver.complete_step(p.caseworker, case_id, "intake", intake())
    version = driver.case(case_id).version
    with pytest.raises(Conflict), driver.factory() as s:
        cases.complete_task(s, driver.env, s.get(User, p.caseworker.id), task.id, intake(), driver.clock.now())
    assert driver.case(case_id).version == version
    assert len(driver.completions(case_id)) == 1
