"""Submissions that do not fit the task's form are refused with every bad field named,
and the case does not move."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.casework import cases
from engine.errors import Invalid
from engine.models import CaseEvent, OutboxEvent
from tests.conftest import Personas
from tests.engine.support import ASSESSMENT, Driver, intake, meeting, plan


@dataclass(frozen=True)
class Snapshot:
    state: str
    version: int
    status: str
    open_tasks: tuple[tuple[str, str, int | None], ...]
    history: int
    outbox: int


def snapshot(driver: Driver, case_id: str) -> Snapshot:
    case = driver.case(case_id)
    with driver.factory() as s:
        history = s.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == case_id))
        outbox = s.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.case_id == case_id))
    tasks = tuple(sorted((t.id, t.state, t.assignee_id) for t in driver.open_tasks(case_id)))
    return Snapshot(case.state, case.version, case.status, tasks, history or 0, outbox or 0)


def without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


INTAKE_CASES = [
    pytest.param(without(intake(), "summary"), {"summary"}, id="missing-summary"),
    pytest.param(without(intake(), "summary", "consent", "multiple_targets"),
                 {"summary", "consent", "multiple_targets"}, id="missing-several"),
    pytest.param(intake(multiple_targets="yes"), {"multiple_targets"}, id="wrong-type"),
    pytest.param(intake(consent="maybe"), {"consent"}, id="not-a-choice"),
    pytest.param(intake(summary=""), {"summary"}, id="empty-string"),
    pytest.param(intake(summary="x" * 4001), {"summary"}, id="too-long"),
    pytest.param(intake(decision="eligible"), {"decision"}, id="unknown-field-cannot-force-the-decision"),
    pytest.param(intake(coordination_problem=None, consent=1), {"coordination_problem", "consent"},
                 id="two-wrong"),
    pytest.param({}, {"multiple_targets", "all_targets_have_lead_department", "lead_department_can_handle_alone",
                      "coordination_problem", "summary", "consent"}, id="empty"),
]


@pytest.mark.parametrize(("data", "fields"), INTAKE_CASES)
def test_invalid_intake_names_the_fields_and_the_case_does_not_move(
        driver: Driver, personas: Personas, data: dict[str, Any], fields: set[str]) -> None:
    case_id = driver.start(personas.caseworker)
    before = snapshot(driver, case_id)
    task = driver.task(case_id, "intake")
    with pytest.raises(Invalid) as err:
        driver.complete(personas.caseworker, task.id, data)
    assert err.value.status == 422
    assert err.value.fields is not None
    assert set(err.value.fields) == fields
    assert all(isinstance(msg, str) and msg for msg in err.value.fields.values())
    assert snapshot(driver, case_id) == before
    driver.check(case_id)


@pytest.mark.parametrize("data", [None, [], "intake", 42])
def test_submission_that_is_not_an_object_is_refused(driver: Driver, personas: Personas, data: Any) -> None:
    case_id = driver.start(personas.caseworker)
    before = snapshot(driver, case_id)
    task = driver.task(case_id, "intake")
    with pytest.raises(Invalid) as err, driver.factory() as s:
        cases.complete_task(s, driver.env, driver.user(s, personas.caseworker), task.id, data, driver.clock.now())
    assert err.value.fields == {"data": err.value.fields["data"]}
    assert snapshot(driver, case_id) == before


MEETING_CASES = [
    pytest.param(meeting("no-such-agency"), {"participants.0", "roles.0.group"}, id="unknown-group"),
    pytest.param({**meeting(), "held_on": "2026/04/20"}, {"held_on"}, id="bad-date"),
    pytest.param({**meeting(), "roles": [{"group": "choju-anshin"}]}, {"roles.0.role"}, id="role-missing"),
    pytest.param({**meeting(), "participants": []}, {"participants"}, id="no-participants"),
    pytest.param({**meeting(), "participants": ["choju-anshin", "choju-anshin"]}, {"participants"},
                 id="duplicate-participants"),
]


@pytest.mark.parametrize(("data", "fields"), MEETING_CASES)
def test_invalid_meeting_names_nested_fields(driver: Driver, personas: Personas, data: dict[str, Any],
                                             fields: set[str]) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, case_id, "plan", plan())
    before = snapshot(driver, case_id)
    task = driver.task(case_id, "meeting")
    with pytest.raises(Invalid) as err:
        driver.complete(p.secretariat, task.id, data)
    assert err.value.fields is not None
    assert set(err.value.fields) == fields
    assert snapshot(driver, case_id) == before
    assert driver.timers(case_id) == []


def test_valid_submission_after_an_invalid_one_goes_through(driver: Driver, personas: Personas) -> None:
    case_id = driver.start(personas.caseworker)
    task = driver.task(case_id, "intake")
    with pytest.raises(Invalid):
        driver.complete(personas.caseworker, task.id, without(intake(), "consent"))
    driver.complete(personas.caseworker, task.id, intake())
    assert driver.open_steps(case_id) == ["assessment"]
    assert len(driver.completions(case_id)) == 1
    driver.check(case_id)


def test_invalid_start_data_is_refused(driver: Driver, personas: Personas) -> None:
    with driver.factory() as s:
        actor = driver.user(s, personas.caseworker)
        now = driver.clock.now()
        with pytest.raises(Invalid) as err:
            cases.start_case(s, driver.env, actor, "multi_agency", {"_secret": 1}, None, now)
        assert set(err.value.fields or {}) == {"data"}
        s.rollback()
        with pytest.raises(Invalid) as err:
            cases.start_case(s, driver.env, actor, "no_such_process", {}, None, now)
        assert set(err.value.fields or {}) == {"process"}
        s.rollback()
        with pytest.raises(Invalid) as err:
            cases.start_case(s, driver.env, actor, "multi_agency", {"summary": "相談"}, "no-such-group", now)
        assert set(err.value.fields or {}) == {"group"}
        s.rollback()
    assert driver.count(CaseEvent) == 0
