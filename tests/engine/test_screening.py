"""Intake screening against every column of 図4 (多機関協働事業で取り扱うケースの基準),
through the engine: a case judged 対象外 goes to the coordination lead's advice and back
to the referring agency (つなぎ元の機関に戻す); an eligible one goes to assessment."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.casework import cases
from engine.errors import Forbidden
from engine.status import CaseStatus, EventKind
from tests.conftest import Personas
from tests.engine.support import ADVICE, ADVICE_ACK, Driver, intake

# (multiple_targets, all_targets_have_lead_department, lead_department_can_handle_alone,
#  coordination_problem) -> decision
FIGURE4 = [
    pytest.param((False, True, True, False), "not_eligible", id="col1-lead-department-alone"),
    pytest.param((False, True, True, True), "consult_only", id="col1-coordination-problem"),
    pytest.param((False, True, False, False), "eligible", id="col2-several-issues"),
    pytest.param((False, True, False, True), "eligible", id="col2-several-issues-coordination"),
    pytest.param((False, False, False, False), "eligible", id="col3-no-department"),
    pytest.param((False, False, True, True), "eligible", id="col3-no-department-any"),
    pytest.param((True, True, True, False), "eligible", id="col4-several-each-department"),
    pytest.param((True, True, False, True), "eligible", id="col4-several-each-department-any"),
    pytest.param((True, False, True, False), "eligible", id="col5-someone-without-department"),
    pytest.param((True, False, False, True), "eligible", id="col5-someone-without-department-any"),
]
NAMES = ("multiple_targets", "all_targets_have_lead_department", "lead_department_can_handle_alone",
         "coordination_problem")


@pytest.mark.parametrize(("values", "decision"), FIGURE4)
def test_intake_screening_follows_figure4(driver: Driver, personas: Personas, values: tuple[bool, ...],
                                          decision: str) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake(**dict(zip(NAMES, values, strict=True))))
    driver.check(case_id)
    expected_step = "assessment" if decision == "eligible" else "advice"
    assert driver.open_steps(case_id) == [expected_step]
    assert driver.ready_data(case_id, expected_step)["decision"] == decision
    assert driver.case(case_id).status == CaseStatus.ACTIVE


@pytest.mark.parametrize(("values", "decision"), [FIGURE4[0], FIGURE4[1]])
def test_ineligible_case_is_advised_and_returned_to_the_referring_agency(
        driver: Driver, personas: Personas, values: tuple[bool, ...], decision: str) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake(**dict(zip(NAMES, values, strict=True))))

    advice = driver.task(case_id, "advice")
    assert (advice.group_id, advice.lane) == ("coordination-lead", "連携責任者")
    assert advice.due_at == advice.created_at + timedelta(days=5)
    # The referring caseworker cannot give the advice: it is the coordination lead's task.
    with pytest.raises(Forbidden), driver.factory() as s:
        cases.complete_task(s, driver.env, driver.user(s, p.caseworker), advice.id, ADVICE, driver.clock.now())

    driver.clock.advance(days=1)
    driver.complete_step(p.lead, case_id, "advice", ADVICE)
    driver.check(case_id)
    received = driver.task(case_id, "advice_received")
    assert (received.group_id, received.lane) == ("hokatsu-center", "つなぎ元")
    assert driver.ready_data(case_id, "advice_received")["advice"] == ADVICE["advice"]

    driver.clock.advance(days=1)
    driver.complete_step(p.caseworker, case_id, "advice_received", ADVICE_ACK)
    driver.check(case_id)
    case = driver.case(case_id)
    assert case.status == CaseStatus.COMPLETED
    assert case.completed_at == driver.clock.now()
    assert driver.open_tasks(case_id) == []
    assert [e.step for e in driver.completions(case_id)] == ["intake", "advice", "advice_received"]
    assert [e.actor_id for e in driver.completions(case_id)] == [p.caseworker.id, p.lead.id, p.caseworker.id]
    assert len(driver.history(case_id, EventKind.CASE_COMPLETED)) == 1
    assert driver.timers(case_id) == []
