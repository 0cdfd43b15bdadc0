"""Retry of a case whose timer's step went over its script limits, once a fixed version is
deployed (and the case moved onto it): the timer fires again and the case goes on."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from engine.casework import repair
from engine.clock import FrozenClock
from engine.models import AuditRecord, Case, ProcessDefinition
from engine.security import audit
from engine.status import CaseStatus, EventKind, TimerStatus
from tests.conftest import Personas
from tests.engine.support import Driver
from tests.engine.test_runaway_scripts import ADVICE, bounded, deploy, settings, timer_diagram

__all__ = ["settings"]  # the runaway tests' small script budget, so the runaway ends quickly


def test_retry_fires_the_failed_timer_again_on_a_fixed_version(driver: Driver, personas: Personas, tmp_path: Path,
                                                              clock: FrozenClock) -> None:
    p = personas
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    deploy(driver, timer_diagram(tmp_path / "v1", "after_timer", "'PT1H'", "i = 0\nwhile i >= 0:\n    i = i + 1"))
    case_id = driver.start(p.secretariat, "after_timer", group="chiiki-kyosei")
    driver.complete(p.secretariat, driver.task(case_id, "work").id, ADVICE)
    clock.advance(hours=2)
    assert bounded(driver.fire) == (0, None)
    assert driver.case(case_id).status == CaseStatus.ERROR
    (timer,) = driver.timers(case_id)
    assert timer.status == TimerStatus.FAILED

    deploy(driver, timer_diagram(tmp_path / "v2", "after_timer", "'PT1H'", "done = True"))
    # Moving the case onto the fixed version is the migration's work; done by hand here.
    with driver.factory() as s:
        fixed = s.scalar(select(ProcessDefinition.id).where(ProcessDefinition.process_key == "after_timer")
                         .order_by(ProcessDefinition.version.desc()).limit(1))
        s.execute(update(Case).where(Case.id == case_id).values(definition_id=fixed))
        s.commit()
    with driver.factory() as s:
        repair.retry_case(s, driver.env, driver.user(s, p.supervisor), case_id, None, clock.now())
    assert driver.case(case_id).status == CaseStatus.COMPLETED
    (timer,) = driver.timers(case_id)
    assert timer.status == TimerStatus.FIRED
    assert [e.data.get("retry") for e in driver.history(case_id, EventKind.TIMER_FIRED)] == [True]
    (retried,) = driver.history(case_id, EventKind.CASE_RETRIED)
    assert retried.data["step"] == "wait"
    with driver.factory() as s:
        assert s.scalar(select(AuditRecord.actor_id).where(AuditRecord.case_id == case_id,
                                                           AuditRecord.action == audit.Action.CASE_RETRY)
                        ) == p.supervisor.id
