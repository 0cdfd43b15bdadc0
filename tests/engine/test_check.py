"""The consistency checker (`engine.ops.check`, `tsunagu check`): clean cases pass, and each kind of
corruption of the stored rows is reported, never repaired."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from cli.main import main
from engine.models import Case, CaseEvent, HumanTask, OutboxEvent, Timer
from engine.ops.check import check_all, check_case
from engine.status import EventKind, OutboxKind, TaskState, TimerStatus
from tests.conftest import Personas
from tests.engine.support import (
    ADVICE,
    ADVICE_ACK,
    ASSESSMENT,
    CLOSURE,
    Driver,
    intake,
    meeting,
    monitoring,
    plan,
    walk_emergency,
)


def waiting_for_monitoring(driver: Driver, p: Personas) -> str:
    """A multi-agency case whose monitoring timer has fired once and is waiting again."""
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, case_id, "plan", plan("P1D"))
    driver.complete_step(p.secretariat, case_id, "meeting", meeting("choju-anshin"))
    driver.clock.advance(days=2)
    assert driver.fire() == 1
    driver.complete_step(p.secretariat, case_id, "monitoring", monitoring("continue"))
    return case_id


def problems(driver: Driver) -> list[str]:
    with driver.factory() as s:
        report = check_all(s, driver.env, batch=2)
    return [p.what for p in report.problems]


@pytest.fixture
def cases(driver: Driver, personas: Personas) -> dict[str, str]:
    p = personas
    closed = waiting_for_monitoring(driver, p)
    driver.clock.advance(days=2)
    assert driver.fire() == 1
    driver.complete_step(p.secretariat, closed, "monitoring", monitoring("close"))
    driver.complete_step(p.secretariat, closed, "closure", CLOSURE)
    assert driver.case(closed).status == "completed"
    returned = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, returned, "intake", intake(multiple_targets=False,
                                                                   all_targets_have_lead_department=True,
                                                                   lead_department_can_handle_alone=True,
                                                                   coordination_problem=False))
    driver.complete_step(p.lead, returned, "advice", ADVICE)
    driver.complete_step(p.caseworker, returned, "advice_received", ADVICE_ACK)
    assert driver.case(returned).status == "completed"
    return {"closed": closed, "returned": returned, "emergency": walk_emergency(driver, p, True),
            "waiting": waiting_for_monitoring(driver, p)}


def test_consistent_cases_have_no_problems(driver: Driver, cases: dict[str, str]) -> None:
    with driver.factory() as s:
        report = check_all(s, driver.env)
        assert report.cases == driver.count(Case) >= 5  # the emergency case handed over to a new one
        assert report.problems == []
        assert check_case(s, driver.env, s.get(Case, cases["waiting"])) == []


def test_a_deleted_open_task_row_is_reported(driver: Driver, cases: dict[str, str]) -> None:
    task = next(t for c in _all_cases(driver) for t in driver.open_tasks(c.id))
    with driver.factory() as s:
        s.execute(delete(HumanTask).where(HumanTask.id == task.id))
        s.commit()
    found = problems(driver)
    assert f"ready task {task.step} {task.id} has no open task row" in found
    assert f"history names task {task.id}, which has no task row" in found
    # Reported, not repaired.
    assert problems(driver) == found


def test_a_stray_timer_and_a_moved_due_time_are_reported(driver: Driver, cases: dict[str, str]) -> None:
    case_id = cases["waiting"]
    (timer,) = driver.timers(case_id, TimerStatus.PENDING)
    stray = str(uuid.uuid4())
    with driver.factory() as s:
        s.add(Timer(case_id=case_id, task_id=stray, step="monitoring_due", step_name="x",
                    due_at=timer.due_at, status=TimerStatus.PENDING, created_at=timer.created_at))
        s.execute(update(Timer).where(Timer.id == timer.id).values(due_at=timer.due_at + timedelta(days=1)))
        s.commit()
    found = problems(driver)
    assert f"pending timer row monitoring_due {stray} is not a waiting timer of the workflow" in found
    assert any(f.startswith(f"pending timer row monitoring_due {timer.task_id} is due") for f in found)
    assert len(found) == 2


def test_altered_state_status_and_version_are_reported(driver: Driver, cases: dict[str, str]) -> None:
    with driver.factory() as s:
        s.execute(update(Case).where(Case.id == cases["waiting"]).values(state='{"broken": true}'))
        s.execute(update(Case).where(Case.id == cases["returned"]).values(status="active", completed_at=None))
        s.execute(update(Case).where(Case.id == cases["closed"]).values(serializer_version="9.9+t99"))
        s.commit()
    with driver.factory() as s:
        report = check_all(s, driver.env)
    by_case = {c: [p.what for p in report.problems if p.case_id == c] for c in cases.values()}
    assert any(w.startswith("workflow state does not load") for w in by_case[cases["waiting"]])
    assert by_case[cases["returned"]] == ["the workflow is complete but the case is active"]
    assert by_case[cases["closed"]][0].startswith("unknown serializer version '9.9+t99'")
    assert by_case[cases["emergency"]] == []
    assert {p.case_number for p in report.problems} == {driver.case(c).number for c in
                                                        (cases["waiting"], cases["returned"], cases["closed"])}


def test_history_and_outbox_mismatches_are_reported(driver: Driver, cases: dict[str, str]) -> None:
    case_id = cases["closed"]
    with driver.factory() as s:
        done = s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id,
                                                 CaseEvent.kind == EventKind.TASK_COMPLETED)).first()
        # The same completion announced twice; a timer fired twice in history; a completed task
        # whose history names another actor.
        twice = s.scalars(select(OutboxEvent).where(OutboxEvent.case_id == case_id,
                                                    OutboxEvent.kind == OutboxKind.TASK_COMPLETED)).first()
        s.add(OutboxEvent(kind=twice.kind, case_id=case_id, payload=dict(twice.payload), created_at=twice.created_at))
        fired = s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id,
                                                  CaseEvent.kind == EventKind.TIMER_FIRED)).first()
        s.add(CaseEvent(case_id=case_id, at=fired.at, kind=fired.kind, step=fired.step, task_id=fired.task_id,
                        data=fired.data))
        s.execute(update(HumanTask).where(HumanTask.id == done.task_id).values(completed_by_id=None))
        s.commit()
    found = problems(driver)
    assert f"task.completed {twice.payload['task_id']}: 1 history row(s) but 2 outbox event(s)" in found
    assert f"fired timer monitoring_due {fired.task_id} has 2 timer_fired history rows (expected 1)" in found
    assert any(f.startswith(f"completed task intake {done.task_id}: completed by user None") for f in found)
    assert any(f.startswith("timer.fired ('monitoring_due'") and "2 history row(s) but 1 outbox" in f
               for f in found)


def test_cli_check_prints_problems_and_exits_1(driver: Driver, cases: dict[str, str], database_url: str,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["check"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"checked {driver.count(Case)} case(s): no problems"]

    case_id = cases["waiting"]
    with driver.factory() as s:
        s.execute(update(Timer).where(Timer.case_id == case_id, Timer.status == TimerStatus.PENDING)
                  .values(status=TimerStatus.CANCELLED))
        s.commit()
    assert main(["check"]) == 1
    out = capsys.readouterr().out.splitlines()
    number = driver.case(case_id).number
    assert len(out) == 2
    assert out[0].startswith(f"{number} ({case_id}): waiting timer monitoring_due ")
    assert out[0].endswith(" has no pending timer row")
    assert out[1] == f"checked {driver.count(Case)} case(s): 1 problem(s) in 1 case(s)"


def _all_cases(driver: Driver) -> list[Case]:
    with driver.factory() as s:
        return list(s.scalars(select(Case)))


def test_open_rows_are_compared_with_ready_tasks(driver: Driver, personas: Personas) -> None:
    case_id = driver.start(personas.caseworker)
    (task,) = driver.open_tasks(case_id)
    with driver.factory() as s:
        s.execute(update(HumanTask).where(HumanTask.id == task.id).values(group_id="kurashi-shien",
                                                                          state=TaskState.OPEN))
        s.commit()
    assert problems(driver) == [f"open task row intake {task.id} belongs to group kurashi-shien, "
                                f"its lane to hokatsu-center"]
