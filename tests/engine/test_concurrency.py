"""Two people acting on the same task at the same moment: exactly one wins, the other
gets a Conflict, and the case stays consistent."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.casework import cases
from engine.errors import Conflict
from engine.models import HumanTask, User
from engine.status import EventKind
from tests.conftest import Personas
from tests.engine.support import ASSESSMENT, Driver, intake, monitoring, plan

ROUNDS = 20
JOIN_TIMEOUT = 120  # only a guard against a hung test; nothing is timed


def race(driver: Driver, user_ids: list[int], action: Callable[[Session, User], Any]) -> list[Any]:
    """Run `action` once per user id, in threads that start together, each with its own
    session. Returns the result or the exception of each."""
    barrier = threading.Barrier(len(user_ids))
    results: list[Any] = [None] * len(user_ids)

    def run(i: int, user_id: int) -> None:
        with driver.factory() as s:
            user = s.scalar(select(User).where(User.id == user_id))
            assert user is not None
            barrier.wait()
            try:
                results[i] = action(s, user)
            except Exception as exc:  # noqa: BLE001 - collected and checked by the test
                s.rollback()
                results[i] = exc

    threads = [threading.Thread(target=run, args=(i, uid)) for i, uid in enumerate(user_ids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT)
        assert not t.is_alive(), "a racing thread did not finish"
    return results


def test_two_people_completing_the_same_task_exactly_one_wins(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    secretaries = [p.secretariat.id, p.supervisor.id]
    data = {"assessment": ASSESSMENT, "plan": plan("P1D"), "monitoring": monitoring("reassess")}
    completed = 0
    for round_no in range(ROUNDS):
        # The role holder's report of each monitoring round is someone else's task.
        (task,) = [t for t in driver.open_tasks(case_id) if t.step != "role_report"]
        assert task.step in data
        version = driver.case(case_id).version
        history = len(driver.history(case_id))

        def complete(s: Session, user: User, task_id: str = task.id, step: str = task.step) -> Any:
            return cases.complete_task(s, driver.env, user, task_id, data[step], driver.clock.now())

        results = race(driver, secretaries, complete)
        winners = [r for r in results if not isinstance(r, Exception)]
        losers = [r for r in results if isinstance(r, Exception)]
        assert len(winners) == 1, f"round {round_no}: {results!r}"
        assert len(losers) == 1 and isinstance(losers[0], Conflict), f"round {round_no}: {results!r}"
        completed += 1

        # One completion in history for this task, the case moved by one save, the rows
        # mirror the workflow.
        done = [e for e in driver.completions(case_id) if e.task_id == task.id]
        assert len(done) == 1
        row = driver.task_row(task.id)
        assert row.state == "completed" and row.completed_by_id == done[0].actor_id
        assert driver.case(case_id).version == version + 1
        assert len(driver.history(case_id)) > history
        driver.check(case_id)

        # Move on to the next fresh task: plan -> meeting -> timer -> monitoring.
        if task.step == "plan":
            driver.complete_step(p.secretariat, case_id, "meeting", {
                "held_on": "2026-04-20", "participants": ["choju-anshin"],
                "roles": [{"group": "choju-anshin", "role": "見守り"}]})
            completed += 1
            driver.clock.advance(days=2)
            assert driver.fire() == 1
    assert len(driver.completions(case_id)) == completed + 1  # + intake
    created = [e for e in driver.history(case_id, EventKind.TASK_CREATED) if e.step != "role_report"]
    assert len(created) == completed + 2  # + intake, + the open one


def test_two_people_claiming_the_same_task_exactly_one_wins(driver: Driver, personas: Personas) -> None:
    p = personas
    for round_no in range(ROUNDS):
        case_id = driver.start(p.caseworker)
        driver.complete_step(p.caseworker, case_id, "intake", intake())
        task = driver.task(case_id, "assessment")

        def claim(s: Session, user: User, task_id: str = task.id) -> Any:
            return cases.claim_task(s, driver.env, user, task_id, driver.clock.now())

        results = race(driver, [p.secretariat.id, p.supervisor.id], claim)
        winners = [r for r in results if isinstance(r, HumanTask)]
        losers = [r for r in results if isinstance(r, Exception)]
        assert len(winners) == 1, f"round {round_no}: {results!r}"
        assert len(losers) == 1 and isinstance(losers[0], Conflict), f"round {round_no}: {results!r}"
        row = driver.task_row(task.id)
        assert row.assignee_id == winners[0].assignee_id
        assert row.assignee_id in (p.secretariat.id, p.supervisor.id)
        assert len(driver.history(case_id, EventKind.TASK_CLAIMED)) == 1


def test_claim_conflicts_and_release(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    task = driver.task(case_id, "assessment")
    now = driver.clock.now()
    with driver.factory() as s:
        cases.claim_task(s, driver.env, driver.user(s, p.secretariat), task.id, now)
    with driver.factory() as s:  # claiming again is fine for the holder, and records nothing more
        cases.claim_task(s, driver.env, driver.user(s, p.secretariat), task.id, now)
    for action in (
        lambda s: cases.claim_task(s, driver.env, driver.user(s, p.supervisor), task.id, now),
        lambda s: cases.complete_task(s, driver.env, driver.user(s, p.supervisor), task.id, ASSESSMENT, now),
    ):
        with driver.factory() as s:
            try:
                action(s)
                raise AssertionError("expected a Conflict")
            except Conflict:
                pass
    assert driver.task_row(task.id).assignee_id == p.secretariat.id
    assert driver.open_steps(case_id) == ["assessment"]

    # The supervisor may release it; then the other member can claim and complete it.
    with driver.factory() as s:
        cases.release_task(s, driver.env, driver.user(s, p.supervisor), task.id, now)
    with driver.factory() as s:
        cases.claim_task(s, driver.env, driver.user(s, p.supervisor), task.id, now)
    driver.complete(p.supervisor, task.id, ASSESSMENT)
    assert driver.open_steps(case_id) == ["plan"]
    assert [e.kind for e in driver.history(case_id) if e.task_id == task.id] == [
        "task_created", "task_claimed", "task_released", "task_claimed", "task_completed"]


def test_claim_then_complete_race_leaves_one_outcome(driver: Driver, personas: Personas) -> None:
    """One member claims while the other completes: either the completion wins (the claim
    conflicts) or the claim wins (the completion conflicts); never both."""
    p = personas
    for round_no in range(ROUNDS // 2):
        case_id = driver.start(p.caseworker)
        driver.complete_step(p.caseworker, case_id, "intake", intake())
        task = driver.task(case_id, "assessment")
        calls = {
            p.secretariat.id: lambda s, u, t=task.id: cases.claim_task(s, driver.env, u, t, driver.clock.now()),
            p.supervisor.id: lambda s, u, t=task.id: cases.complete_task(s, driver.env, u, t, ASSESSMENT,
                                                                          driver.clock.now()),
        }
        results = race(driver, list(calls), lambda s, u, c=calls: c[u.id](s, u))
        errors = [r for r in results if isinstance(r, Exception)]
        assert len(errors) == 1 and isinstance(errors[0], Conflict), f"round {round_no}: {results!r}"
        row = driver.task_row(task.id)
        if isinstance(results[1], Exception):
            assert row.state == "open" and row.assignee_id == p.secretariat.id
            assert driver.open_steps(case_id) == ["assessment"]
        else:
            assert row.state == "completed" and row.completed_by_id == p.supervisor.id
            assert driver.open_steps(case_id) == ["plan"]
        driver.check(case_id)
