"""Timer sweep: fire every due timer exactly once, each in its own transaction.

Claim → work → commit: the claim is a conditional UPDATE (pending → fired) that only one
transaction can win, so any number of sweeping processes may run at once; the case's
state, projection, history and outbox are written in that same transaction, so a crash
before commit leaves the timer pending for the next sweep. One timer that fails is
recorded and retried later with back-off; it never stops the others.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from SpiffWorkflow.util.task import TaskState as SpiffState
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from engine import audit, runtime, writes
from engine.clock import Clock
from engine.db import begin_write
from engine.env import Env
from engine.expressions import limit_exceeded
from engine.models import Case, Timer
from engine.status import CaseStatus, EventKind, OutboxKind, TimerStatus

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
# The database went away or is locked: retry the sweep later, without counting it against a timer.
DB_UNAVAILABLE = (OperationalError, InterfaceError)


_TIMERS = Timer.__table__
# The timer a claim may take: pending and due, and not held by another transaction (PostgreSQL:
# SKIP LOCKED, passed over at once rather than waited for; SQLite's writers take turns anyway).
# Either the one named, or the earliest due one this call has not tried yet.
_FREE_BY_ID = (select(_TIMERS.c.id).where(_TIMERS.c.id == bindparam("timer_id"),
                                          _TIMERS.c.status == TimerStatus.PENDING, _TIMERS.c.due_at < bindparam("now"))
               .with_for_update(skip_locked=True).scalar_subquery())
_NEXT_FREE = (select(_TIMERS.c.id)
              .where(_TIMERS.c.status == TimerStatus.PENDING, _TIMERS.c.due_at < bindparam("now"),
                     _TIMERS.c.id.not_in(bindparam("tried", expanding=True)))
              .order_by(_TIMERS.c.due_at, _TIMERS.c.id).limit(1)
              .with_for_update(skip_locked=True).scalar_subquery())


def _claim_statement(free: Any) -> Any:
    """Mark the timer that `free` selects as fired, handing back what firing it needs. Built once
    per kind: a sweep runs it for every timer."""
    return (update(_TIMERS)
            .where(_TIMERS.c.id == free, _TIMERS.c.status == TimerStatus.PENDING, _TIMERS.c.due_at < bindparam("now"))
            .values(status=TimerStatus.FIRED, fired_at=bindparam("now"), attempts=_TIMERS.c.attempts + 1)
            .returning(_TIMERS.c.id, _TIMERS.c.case_id, _TIMERS.c.task_id, _TIMERS.c.step, _TIMERS.c.step_name,
                       _TIMERS.c.due_at))


_CLAIM_BY_ID = _claim_statement(_FREE_BY_ID)
_CLAIM_NEXT = _claim_statement(_NEXT_FREE)


def due_timer_ids(session: Session, now: datetime, limit: int) -> list[int]:
    stmt = (select(Timer.id).where(Timer.status == TimerStatus.PENDING, Timer.due_at < now)
            .order_by(Timer.due_at, Timer.id).limit(limit))
    return list(session.scalars(stmt))


def fire_one(session: Session, env: Env, timer_id: int, now: datetime) -> bool:
    """Fire one timer if this transaction wins the claim. Commits. True if it fired."""
    begin_write(session)
    claimed = _claim(session, _CLAIM_BY_ID, timer_id=timer_id, now=now)
    if claimed is None:
        session.rollback()
        return False
    return _fire(session, env, claimed, now)


def _claim(session: Session, statement: Any, **params: Any) -> Any:
    """Run a claim; the claimed row if this transaction won it, else None."""
    return session.connection().execute(statement, params).first()


def _fire(session: Session, env: Env, timer: Any, now: datetime) -> bool:
    """Run the case past the timer this transaction has claimed (`timer`: the claimed row). Commits.
    True if it fired."""
    case = session.get(Case, timer.case_id)
    if case is None or case.status == CaseStatus.COMPLETED:
        session.execute(update(_TIMERS).where(_TIMERS.c.id == timer.id).values(status=TimerStatus.CANCELLED))
        session.commit()
        return False
    defn, wf = writes.load(env, case)
    runtime.run_engine(wf, now, env.settings.script_limits)
    task = wf.get_task_from_id(uuid.UUID(timer.task_id))
    if task is not None and task.state == SpiffState.WAITING:
        # Spiff does not see it as due (e.g. the diagram changed the due time): not ours to force.
        session.rollback()
        return False
    writes.history(session, case, EventKind.TIMER_FIRED, now, None, timer.step, timer.step_name, timer.task_id,
             {"due_at": timer.due_at.isoformat()})
    writes.emit(session, OutboxKind.TIMER_FIRED, case, now, step=timer.step, due_at=timer.due_at.isoformat())
    writes.sync(session, env, case, defn, wf, None, now)
    audit.record(session, None, audit.Action.TIMER_FIRE, now, case, {"step": timer.step, "timer_id": timer.id},
                 actor_name="scheduler")
    session.commit()
    return True


def _record_failure(session_factory: sessionmaker[Session], timer_id: int, exc: Exception, now: datetime) -> None:
    with session_factory() as session:
        begin_write(session)
        timer = session.get(Timer, timer_id)
        if timer is None or timer.status != TimerStatus.PENDING:
            return
        timer.attempts += 1
        timer.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if timer.attempts >= MAX_ATTEMPTS:
            timer.status = TimerStatus.FAILED
        else:
            timer.due_at = now + timedelta(seconds=min(2 ** timer.attempts, 300))
        session.commit()


def _record_runaway(session_factory: sessionmaker[Session], timer_id: int, exc: Exception, now: datetime) -> None:
    """The diagram's code went over its limits after this timer: it would again on every retry,
    so the timer fails at once and its case is marked `error` with the limit's text."""
    failed = writes.workflow_failure(exc)
    message = failed.message
    with session_factory() as session:
        begin_write(session)
        timer = session.get(Timer, timer_id)
        if timer is None:
            return
        timer.status, timer.attempts, timer.last_error = TimerStatus.FAILED, timer.attempts + 1, message[:2000]
        writes.mark_error(session, timer.case_id, message, now, (failed.fields or {}).get("element"))


def fire_due(session_factory: sessionmaker[Session], env: Env, now: datetime, limit: int = 200,
             clock: Clock | None = None) -> int:
    """Fire timers due before `now` (at most `limit`, earliest first). Returns how many this call fired.

    With `clock` (the sweeper's), each timer is claimed and fired at the clock's time then, not at
    `now`: its `fired_at` is when it fired even late in a long sweep.

    Each transaction claims the next due timer that no other transaction holds, so sweepers running
    at once share the work rather than all trying the same timers. A timer tried once in this call
    (fired, failed or not yet due for Spiff) is not tried again in it."""
    fired = 0
    tried: list[int] = []
    # One read says how many are due (up to `limit`): a lone sweeper then claims exactly those,
    # without a last claim that finds nothing (a write transaction on SQLite).
    with session_factory() as session:
        due = len(due_timer_ids(session, now, limit))
        session.commit()
    for _ in range(due):
        with session_factory() as session:
            begin_write(session)
            at = clock.now() if clock is not None else now
            claimed = _claim(session, _CLAIM_NEXT, now=at, tried=tried)
            if claimed is None:
                session.rollback()
                break  # another sweeper has taken the rest
            timer_id = claimed.id
            tried.append(timer_id)
            try:
                fired += _fire(session, env, claimed, at)
            except StaleDataError:
                session.rollback()  # the case moved meanwhile; the timer is still pending
            except DB_UNAVAILABLE:
                session.rollback()  # no fault of the timer's: it stays pending, untouched
                raise
            except Exception as exc:
                session.rollback()
                if limit_exceeded(exc) is not None:
                    log.warning("timer %s: the diagram went over its script limits: %s", timer_id, exc)
                    _record_runaway(session_factory, timer_id, exc, at)
                    continue
                log.exception("timer %s failed", timer_id)
                _record_failure(session_factory, timer_id, exc, at)
    return fired
