"""The in-process workflow cache (engine.workflow.workflows): a step reuses the workflow its process
stored last only while the case row still holds that state, and nothing a step did before a
rollback is ever reused."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from engine.casework import writes
from engine.env import Env
from engine.models import Case
from engine.ops.db import begin_write
from engine.settings import Settings
from engine.workflow import runtime
from tests.conftest import Personas
from tests.engine.support import (
    MONITORING_ROUND,
    Driver,
    monitoring,
    waiting_case,
)


def test_a_committed_step_leaves_its_workflow_for_the_next(driver: Driver, personas: Personas) -> None:
    case_id = waiting_case(driver, personas)
    assert driver.env.workflows.cached_state(case_id) == driver.case(case_id).state
    driver.clock.advance(days=15)
    assert driver.fire() == 1
    assert driver.env.workflows.cached_state(case_id) == driver.case(case_id).state
    assert driver.open_steps(case_id) == MONITORING_ROUND
    driver.check(case_id)


def test_a_step_after_another_workers_write_uses_the_stored_state(
        driver: Driver, personas: Personas, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    case_id = waiting_case(driver, personas)
    stale = driver.env.workflows.cached_state(case_id)
    assert stale is not None
    # Another process (its own caches) fires the timer: the case moves on without us.
    other = Driver(session_factory, Env.from_settings(settings), driver.clock)
    driver.clock.advance(days=15)
    assert other.fire() == 1
    assert driver.case(case_id).state != stale
    # Our stale workflow still waits at the timer; the stored one has the monitoring task ready.
    driver.complete_step(personas.secretariat, case_id, "monitoring", monitoring("continue"))
    assert driver.open_steps(case_id) == []
    assert [t.status for t in driver.timers(case_id)] == ["fired", "pending"]
    assert driver.env.workflows.cached_state(case_id) == driver.case(case_id).state
    driver.check(case_id)


def test_a_rolled_back_step_leaves_no_cached_state(driver: Driver, personas: Personas) -> None:
    case_id = waiting_case(driver, personas)
    before = driver.case(case_id).state
    later = driver.clock.advance(days=15)
    with driver.factory() as s:
        begin_write(s)
        case = s.get(Case, case_id)
        defn, wf = writes.load(driver.env, case)
        runtime.run_engine(wf, later)
        writes.sync(s, driver.env, case, defn, wf, None, later)
        s.flush()
        s.rollback()
    assert driver.env.workflows.cached_state(case_id) is None
    assert driver.case(case_id).state == before
    # The workflow the rolled-back step ran on (past its timer) is not reused: the timer fires.
    assert driver.fire() == 1
    assert driver.open_steps(case_id) == MONITORING_ROUND
    driver.check(case_id)


def test_a_failed_commit_leaves_no_cached_state(driver: Driver, personas: Personas) -> None:
    """A step whose transaction is never committed (the session closed without commit)."""
    case_id = waiting_case(driver, personas)
    later = driver.clock.advance(days=15)
    with driver.factory() as s:
        begin_write(s)
        case = s.get(Case, case_id)
        defn, wf = writes.load(driver.env, case)
        runtime.run_engine(wf, later)
        writes.sync(s, driver.env, case, defn, wf, None, later)
        s.flush()
    assert driver.env.workflows.cached_state(case_id) is None
    assert driver.fire() == 1
    driver.check(case_id)


def _walk(driver: Driver, personas: Personas) -> list[Any]:
    """Two monitoring rounds and the closure of one case; what the rows and the state say at
    each step, without the random ids."""
    p = personas
    case_id = waiting_case(driver, personas)
    seen: list[Any] = []

    def look() -> None:
        state = json.loads(driver.case(case_id).state)
        tasks = sorted((t["task_spec"], t["state"], json.dumps(t["data"], sort_keys=True))
                       for t in state["tasks"].values())
        seen.append((driver.open_steps(case_id), [(e.kind, e.step) for e in driver.history(case_id)],
                     [(t.step, t.status) for t in driver.timers(case_id)], tasks))

    for next_step in ("continue", "close"):
        driver.clock.advance(days=15)
        driver.fire()
        look()
        driver.complete_step(p.secretariat, case_id, "monitoring", monitoring(next_step))
        look()
    driver.complete_step(p.secretariat, case_id, "closure", {"evaluation": "定着", "outcome": "established"})
    look()
    assert driver.case(case_id).status == "completed"
    return seen


def test_the_cache_off_gives_identical_results(
        driver: Driver, personas: Personas, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    cached = _walk(driver, personas)
    off = Env.from_settings(replace(settings, workflow_cache=0))
    uncached = _walk(Driver(session_factory, off, driver.clock), personas)
    assert len(off.workflows) == 0
    assert cached == uncached
