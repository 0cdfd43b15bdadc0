"""What the workflow does of itself (a task comes up or goes, a timer is set, the case ends) is
the system's in the history, whoever completed the step, fired the timer or sent the message
that moved it; what a person did stays theirs."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.casework import cases
from engine.clock import FrozenClock
from engine.env import Env
from engine.models import User
from engine.status import SYSTEM_EVENTS, CaseStatus, EventKind
from tests.conftest import Personas
from tests.engine.messages_support import WAITING, deploy_message_diagrams
from tests.engine.support import ASSESSMENT, Driver, intake, meeting, plan


def actors(driver: Driver, case_id: str) -> list[tuple[str, str | None, Any]]:
    return [(e.kind, e.step, e.actor_id) for e in driver.history(case_id)]


def test_a_completed_steps_next_task_is_the_systems(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    rows = actors(driver, case_id)
    assert ("case_started", None, p.caseworker.id) in rows
    assert ("task_completed", "intake", p.caseworker.id) in rows
    created = [r for r in rows if r[0] == EventKind.TASK_CREATED]
    assert [r[1] for r in created] == ["intake", "assessment"]
    assert {r[2] for r in created} == {None}


def test_tasks_and_timers_a_timer_brings_are_the_systems(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, case_id, "plan", plan("P7D"))
    driver.complete_step(p.secretariat, case_id, "meeting", meeting())
    driver.clock.advance(days=8)
    assert driver.fire() == 1
    rows = actors(driver, case_id)
    assert ("timer_scheduled", "monitoring_due", None) in rows
    assert ("timer_fired", "monitoring_due", None) in rows
    assert ("task_created", "monitoring", None) in rows
    assert not [r for r in rows if r[0] in SYSTEM_EVENTS and r[2] is not None]


@pytest.fixture
def message_driver(session_factory: sessionmaker[Session], env: Env, clock: FrozenClock) -> Driver:
    deploy_message_diagrams(session_factory, env, clock)
    return Driver(session_factory, env, clock)


def test_a_case_a_message_ends_ends_by_the_system(message_driver: Driver, personas: Personas) -> None:
    driver = message_driver
    with driver.factory() as s:
        case_id = cases.start_case(s, driver.env, s.get(User, personas.caseworker.id), WAITING,
                                   {"household_ref": "H-1"}, None, driver.clock.now()).id
        cases.receive_message(s, driver.env, s.get(User, personas.secretariat.id), "test_result", {"result": "陰性"},
                              {"household_ref": "H-1"}, driver.clock.now())
    assert driver.case(case_id).status == CaseStatus.COMPLETED
    rows = actors(driver, case_id)
    assert ("message_received", rows[-2][1], personas.secretariat.id) in rows
    assert rows[-1] == ("case_completed", None, None)
