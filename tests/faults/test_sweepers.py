"""Four processes sweeping the same due timers at once: each timer fires exactly once.

PostgreSQL gets 10,000 due timers. SQLite gets 2,000: its writers take turns on one database
lock, so four sweepers there are a test of correctness, not of speed, and 10,000 would take
minutes on a small CI machine for no more evidence.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import utcnow
from engine.env import Env
from engine.models import CaseEvent, HumanTask, OutboxEvent, Timer
from engine.ops.check import check_all
from engine.settings import ROOT
from engine.status import EventKind, OutboxKind, TaskState, TimerStatus
from tests.conftest import PG_URL, Personas
from tests.engine.support import ASSESSMENT, Driver, intake, meeting, plan
from tests.faults.support import CLI, cli_env, clone_cases

pytestmark = pytest.mark.slow

SWEEPERS = 4
TIMERS = 10_000 if PG_URL else 2_000
TEMPLATES = 4


def _count(factory: sessionmaker[Session], stmt) -> int:  # noqa: ANN001
    with factory() as s:
        return s.scalar(stmt) or 0


def test_four_sweepers_fire_each_due_timer_exactly_once(driver: Driver, personas: Personas, env: Env,
                                                         database_url: str) -> None:
    p = personas
    # The templates wait for a monitoring timer that fell due days ago by the real clock, which
    # the sweeping processes use.
    driver.clock.set(utcnow() - timedelta(days=10))
    templates = []
    for _ in range(TEMPLATES):
        case_id = driver.start(p.caseworker)
        driver.complete_step(p.caseworker, case_id, "intake", intake())
        driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
        driver.complete_step(p.secretariat, case_id, "plan", plan("P1D"))
        driver.complete_step(p.secretariat, case_id, "meeting", meeting("choju-anshin"))
        assert len(driver.timers(case_id, TimerStatus.PENDING)) == 1
        templates.append(case_id)
    t0 = time.monotonic()
    clones = clone_cases(driver.factory, templates, TIMERS - TEMPLATES)
    cloned_in = time.monotonic() - t0
    factory = driver.factory
    pending = select(func.count()).select_from(Timer).where(Timer.status == TimerStatus.PENDING)
    assert _count(factory, pending) == TIMERS
    # The copies are as consistent as the originals.
    with factory() as s:
        assert check_all(s, env, case_ids=templates + clones[:50] + clones[-50:]).problems == []

    t0 = time.monotonic()
    procs = [subprocess.Popen([*CLI, "sweep", "--until-done"], cwd=ROOT, env=cli_env(database_url),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(SWEEPERS)]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    elapsed = time.monotonic() - t0
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    fired_by = [int(out.split()[-1]) for out, _ in outputs]
    rate = TIMERS / elapsed
    print(f"\n{SWEEPERS} sweepers fired {TIMERS} timers in {elapsed:.1f}s ({rate:.0f}/s), "
          f"per process {fired_by}; cloning took {cloned_in:.1f}s")

    # Every process's count adds up to exactly the number of timers: none fired twice.
    assert sum(fired_by) == TIMERS
    assert all(n > 0 for n in fired_by), f"some sweeper got no work: {fired_by}"
    assert _count(factory, pending) == 0
    assert _count(factory, select(func.count()).select_from(Timer).where(Timer.status == TimerStatus.FIRED)) == TIMERS
    assert _count(factory, select(func.max(Timer.attempts))) == 1
    with factory() as s:
        fired = Counter(s.scalars(select(CaseEvent.task_id).where(CaseEvent.kind == EventKind.TIMER_FIRED)))
        assert len(fired) == TIMERS and set(fired.values()) == {1}
    assert _count(factory, select(func.count()).select_from(OutboxEvent)
                  .where(OutboxEvent.kind == OutboxKind.TIMER_FIRED)) == TIMERS
    assert _count(factory, select(func.count()).select_from(HumanTask)
                  .where(HumanTask.state == TaskState.OPEN, HumanTask.step == "monitoring")) == TIMERS
    with factory() as s:
        sample = templates + clones[:: max(1, len(clones) // 200)]
        report = check_all(s, env, case_ids=sample)
        assert report.cases == len(sample) and report.problems == []
