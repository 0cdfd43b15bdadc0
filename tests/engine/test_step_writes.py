"""What one step writes on the case row: its state and the time of its newest history row in one
UPDATE; history rolled back with a savepoint moves nothing."""

from __future__ import annotations

from datetime import timedelta

from engine.casework import writes
from engine.models import Case
from engine.ops.db import begin_write
from engine.status import EventKind
from tests.conftest import Personas
from tests.engine.support import Driver, monitoring, statements_sent, waiting_case


def case_updates(driver: Driver, action) -> list[str]:  # noqa: ANN001
    return [statement for statement, _, _ in statements_sent(driver, action)
            if statement.lstrip().upper().startswith("UPDATE CASES")]


def test_a_timer_and_a_completion_each_write_the_case_row_once(driver: Driver, personas: Personas) -> None:
    case_id = waiting_case(driver, personas)
    now = driver.clock.advance(days=15)
    assert len(case_updates(driver, driver.fire)) == 1
    assert driver.case(case_id).last_event_at == now
    later = driver.clock.advance(hours=1)
    done = case_updates(driver, lambda: driver.complete_step(personas.secretariat, case_id, "monitoring",
                                                             monitoring("continue")))
    assert len(done) == 1
    assert driver.case(case_id).last_event_at == later
    driver.check(case_id)


def test_history_rolled_back_with_its_savepoint_moves_no_last_event(driver: Driver, personas: Personas) -> None:
    kept, undone = driver.start(personas.caseworker), driver.start(personas.caseworker)
    started = driver.case(undone).last_event_at
    now = driver.clock.advance(days=1)
    with driver.factory() as s:
        begin_write(s)
        writes.history(s, s.get(Case, kept), EventKind.CASE_LINKED, now, None)
        savepoint = s.begin_nested()
        writes.history(s, s.get(Case, undone), EventKind.CASE_LINKED, now + timedelta(hours=1), None)
        savepoint.rollback()
        s.commit()
    assert driver.case(kept).last_event_at == now
    assert driver.case(undone).last_event_at == started
