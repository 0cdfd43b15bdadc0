"""The stored workflow state does not grow with the life of a case: finished history is
pruned from it and kept on our own rows instead (one history row per completion)."""

from __future__ import annotations

import json

from engine.status import EventKind, TimerStatus
from tests.conftest import Personas
from tests.engine.support import ASSESSMENT, Driver, intake, meeting, monitoring, plan, waiting_case


def monitoring_round(driver: Driver, personas: Personas, case_id: str, next_step: str = "continue") -> None:
    driver.clock.advance(days=15)
    assert driver.fire() == 1
    driver.complete_step(personas.secretariat, case_id, "monitoring", monitoring(next_step))


def test_state_size_is_the_same_after_3_and_after_60_monitoring_rounds(driver: Driver, personas: Personas) -> None:
    case_id = waiting_case(driver, personas)
    sizes: dict[int, int] = {}
    for round_no in range(1, 61):
        monitoring_round(driver, personas, case_id)
        if round_no in (3, 60):
            sizes[round_no] = len(driver.case(case_id).state)
            driver.check(case_id)
    assert abs(sizes[60] - sizes[3]) < 0.10 * sizes[3], sizes

    # The tree itself stays small: only the live part is kept.
    tasks = json.loads(driver.case(case_id).state)["tasks"]
    # (a monitoring round of parallel role reports with their boundary event leaves ~36)
    assert len(tasks) < 40

    # What happened is on our rows: one completion row per completed task.
    completions = driver.completions(case_id)
    assert len(completions) == 4 + 60
    assert [e.step for e in completions].count("monitoring") == 60
    assert len({e.task_id for e in completions}) == len(completions)
    assert len(driver.history(case_id, EventKind.TIMER_FIRED)) == 60
    assert len(driver.timers(case_id, TimerStatus.FIRED)) == 60
    assert len(driver.timers(case_id, TimerStatus.PENDING)) == 1


def test_state_size_does_not_grow_through_reassessment_loops(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    sizes = []
    for _ in range(8):
        driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
        driver.complete_step(p.secretariat, case_id, "plan", plan("P14D"))
        driver.complete_step(p.secretariat, case_id, "meeting", meeting())
        monitoring_round(driver, personas, case_id, "reassess")
        sizes.append(len(driver.case(case_id).state))
    assert max(sizes[2:]) - min(sizes[2:]) < 0.10 * min(sizes[2:]), sizes
    assert len(driver.completions(case_id)) == 1 + 8 * 4
    driver.check(case_id)
