"""Timer sweep: fire every due timer exactly once, a batch of them to a transaction.

Claim → work → commit: the claim is a conditional UPDATE (pending → fired) that only one
transaction can win, so any number of sweeping processes may run at once; the case's
state, projection, history, outbox and audit record are written in that same transaction,
so a crash before commit leaves the timer pending for the next sweep. One timer that fails is
rolled back alone (its batch is done again with a savepoint per timer), recorded and retried
later with back-off; it never stops the others.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from SpiffWorkflow.util.task import TaskState as SpiffState
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from engine.casework import writes
from engine.clock import Clock
from engine.env import Env
from engine.models import Timer
from engine.ops.db import begin_write
from engine.security import audit
from engine.status import CaseStatus, EventKind, OutboxKind, TimerStatus
from engine.workflow import runtime
from engine.workflow.expressions import limit_exceeded

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


_DUE_IDS = (select(_TIMERS.c.id).where(_TIMERS.c.status == TimerStatus.PENDING, _TIMERS.c.due_at < bindparam("now"))
            .order_by(_TIMERS.c.due_at, _TIMERS.c.id).limit(bindparam("limit", literal_execute=False)))


def due_timer_ids(session: Session, now: datetime, limit: int) -> list[int]:
    return list(session.connection().execute(_DUE_IDS, {"now": now, "limit": limit}).scalars())


def next_due(session: Session, now: datetime) -> datetime | None:
    """When the next pending timer falls due after `now`; None if none does."""
    return session.scalar(select(func.min(Timer.due_at)).where(Timer.status == TimerStatus.PENDING,
                                                                 Timer.due_at > now))


def fire_one(session: Session, env: Env, timer_id: int, now: datetime) -> bool:
    """Fire one timer if this transaction wins the claim. Commits. True if it fired."""
    begin_write(session)
    claimed = _claim(session, _CLAIM_BY_ID, timer_id=timer_id, now=now)
    if claimed is None:
        session.rollback()
        return False
    audits: list[audit.Entry] = []
    outcome = _fire(session, env, claimed, now, audits)
    if outcome == NOT_DUE:
        session.rollback()
        return False
    audit.record_many(session, audits)
    session.commit()
    return outcome == FIRED


def _claim(session: Session, statement: Any, **params: Any) -> Any:
    """Run a claim; the claimed row if this transaction won it, else None."""
    return session.connection().execute(statement, params).first()


# What `_fire` did with the timer it claimed.
FIRED = "fired"
CANCELLED = "cancelled"  # its case is gone or completed: the timer is cancelled
NOT_DUE = "not_due"  # Spiff does not see it as due: undo the claim
FAILED = "failed"  # it raised: undone, and recorded for a retry later (`_record`)


def _fire(session: Session, env: Env, timer: Any, now: datetime, audits: list[audit.Entry]) -> str:
    """Run the case past the timer this transaction has claimed (`timer`: the claimed row), in
    the caller's transaction, and flush. Its audit record is appended to `audits`, for the
    caller to write (`audit.record_many`) in the same transaction."""
    case = writes.read_case(session, timer.case_id)
    if case is None or case.status == CaseStatus.COMPLETED:
        session.execute(update(_TIMERS).where(_TIMERS.c.id == timer.id).values(status=TimerStatus.CANCELLED))
        return CANCELLED
    defn, wf = writes.load_read(session, env, case)
    runtime.run_engine(wf, now, env.settings.script_limits)
    task = wf.get_task_from_id(uuid.UUID(timer.task_id))
    if task is not None and task.state == SpiffState.WAITING:
        # Spiff does not see it as due (e.g. the diagram changed the due time): not ours to force.
        return NOT_DUE
    with writes.batched(session):
        writes.history(session, case, EventKind.TIMER_FIRED, now, None, timer.step, timer.step_name,
                       timer.task_id, {"due_at": timer.due_at.isoformat()})
        writes.emit(session, OutboxKind.TIMER_FIRED, case, now, step=timer.step, due_at=timer.due_at.isoformat())
        writes.sync(session, env, case, defn, wf, None, now)
    writes.save_case(session, case)
    # Whatever sync changed through the session goes out now, inside the timer's savepoint.
    session.flush()
    audits.append(audit.Entry(audit.Action.TIMER_FIRE, now, "scheduler", case.id, case.number,
                              {"step": timer.step, "timer_id": timer.id}))
    return FIRED


def _record_failure(session: Session, timer_id: int, exc: Exception, now: datetime) -> None:
    """The timer failed (its savepoint rolled back, so it is pending as it was): count the
    attempt and try it again later with back-off, or give up on it after MAX_ATTEMPTS."""
    timer = session.get(Timer, timer_id)
    if timer is None or timer.status != TimerStatus.PENDING:
        return
    timer.attempts += 1
    timer.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    if timer.attempts >= MAX_ATTEMPTS:
        timer.status = TimerStatus.FAILED
    else:
        timer.due_at = now + timedelta(seconds=min(2 ** timer.attempts, 300))
    session.flush()


def _record_runaway(session: Session, timer_id: int, exc: Exception, now: datetime) -> None:
    """The diagram's code went over its limits after this timer: it would again on every retry,
    so the timer fails at once and its case is marked `error` with the limit's text."""
    failed = writes.workflow_failure(exc)
    message = failed.message
    timer = session.get(Timer, timer_id)
    if timer is None:
        return
    timer.status, timer.attempts, timer.last_error = TimerStatus.FAILED, timer.attempts + 1, message[:2000]
    writes.record_error(session, timer.case_id, message, now, (failed.fields or {}).get("element"))
    session.flush()


# A sweep fires its timers in transactions of up to BATCH_TIMERS timers, each transaction
# taking no longer than about BATCH_SECONDS: one commit (and, on SQLite, one write of the
# pages every timer touches: the audit heads, the indexes) serves many timers, while the write
# lock (SQLite) and the claimed cases' rows (PostgreSQL) are held no longer than that.
BATCH_TIMERS = 100
BATCH_SECONDS = 0.1


def fire_due(session_factory: sessionmaker[Session], env: Env, now: datetime, limit: int = 200,
             clock: Clock | None = None) -> int:
    """Fire timers due before `now` (at most `limit`, earliest first). Returns how many this call fired.

    With `clock` (the sweeper's), each timer is claimed and fired at the clock's time then, not at
    `now`: its `fired_at` is when it fired even late in a long sweep.

    Timers are fired in batches, one transaction each (see BATCH_TIMERS): a timer's state change,
    history and outbox are in the transaction with its claim, and the batch's audit records are
    appended before the commit. A crash before the commit leaves the batch's timers pending for
    the next sweep. A batch first runs unguarded, the timers one after another with no savepoint
    between them (two statements and their bookkeeping less per timer); if one of them fails or
    Spiff does not see it as due, the whole batch is undone and done again guarded, each timer
    in a savepoint of its own, so that one is rolled back alone, recorded (with back-off) and
    the others go on. The next batch runs unguarded again: a timer that failed is recorded and
    no longer due, so each such timer costs at most one undone batch.

    Each claim takes the next due timer that no other transaction holds, so sweepers running at
    once share the work rather than all trying the same timers. A timer tried once in this call
    (fired, failed or not yet due for Spiff) is not tried again in it."""
    fired = 0
    # Tried here and still pending and due (not yet due for Spiff, or its case moved meanwhile);
    # the fired, failed and cancelled ones are no longer pending, so no claim can find them.
    passed: list[int] = []
    # One read says how many are due (up to `limit`): a lone sweeper then claims exactly those,
    # without a last claim that finds nothing (a write transaction on SQLite).
    with session_factory() as session:
        left = len(due_timer_ids(session, now, limit))
        session.commit()
    guarded = False
    while left > 0:
        with session_factory() as session:
            begin_write(session)
            try:
                taken, count, exhausted = _fire_batch(session, env, now, clock, left, passed, guarded)
                session.commit()
            except _Undo:
                session.rollback()
                guarded = True
                continue
            except BaseException:
                # The database is away (or this process is stopping): no fault of the timers'.
                # The batch is undone and its timers stay pending, untouched.
                session.rollback()
                raise
        left, fired, guarded = left - taken, fired + count, False
        if exhausted:
            break
    return fired


class _Undo(Exception):  # noqa: N818 - a signal, not an error
    """A timer of an unguarded batch failed, or Spiff does not see it as due: undo the batch."""


def _fire_batch(session: Session, env: Env, now: datetime, clock: Clock | None, left: int, passed: list[int],
                guarded: bool) -> tuple[int, int, bool]:
    """One batch in the caller's transaction, its audit records written: how many timers it
    took, how many of them fired, and whether it found none left to claim (another sweeper has
    taken the rest). Unguarded, it raises _Undo at the first timer that does not fire cleanly."""
    audits: list[audit.Entry] = []
    began, taken, fired, exhausted = time.monotonic(), 0, 0, False
    while taken < left and taken < BATCH_TIMERS and time.monotonic() - began < BATCH_SECONDS:
        at = clock.now() if clock is not None else now
        outcome = (_fire_guarded if guarded else _fire_unguarded)(session, env, at, passed, audits)
        if outcome is None:
            exhausted = True
            break
        taken += 1
        fired += outcome == FIRED
    audit.record_many(session, audits)
    return taken, fired, exhausted


def _fire_unguarded(session: Session, env: Env, at: datetime, passed: list[int],
                    audits: list[audit.Entry]) -> str | None:
    """Claim and fire the next due timer with no savepoint: None if none was free to claim;
    FIRED or CANCELLED; anything else undoes the batch (_Undo), to be done again guarded."""
    claimed = _claim(session, _CLAIM_NEXT, now=at, tried=passed)
    if claimed is None:
        return None
    try:
        outcome = _fire(session, env, claimed, at, audits)
    except DB_UNAVAILABLE:
        raise
    except Exception as exc:
        raise _Undo from exc
    if outcome == NOT_DUE:
        raise _Undo
    return outcome


def _fire_guarded(session: Session, env: Env, at: datetime, passed: list[int], audits: list[audit.Entry]) -> str | None:
    """Claim and fire the next due timer in a savepoint of the caller's transaction. None if no
    timer was free to claim; else what became of it (FIRED, CANCELLED, NOT_DUE or FAILED)."""
    savepoint = session.begin_nested()
    claimed = _claim(session, _CLAIM_NEXT, now=at, tried=passed)
    if claimed is None:
        savepoint.rollback()
        return None
    timer_id = claimed.id
    mark = len(audits)
    try:
        outcome = _fire(session, env, claimed, at, audits)
        if outcome == NOT_DUE:
            savepoint.rollback()
            passed.append(timer_id)
            return outcome
        savepoint.commit()
        return outcome
    except DB_UNAVAILABLE:
        raise
    except StaleDataError:
        # The case moved meanwhile (another transaction changed it); the timer is still pending.
        del audits[mark:]
        savepoint.rollback()
        passed.append(timer_id)
        return FAILED
    except Exception as exc:
        del audits[mark:]
        savepoint.rollback()
        _record(session, timer_id, exc, at)
        return FAILED


def _record(session: Session, timer_id: int, exc: Exception, at: datetime) -> None:
    """Record a timer's failure in a savepoint of its own: if even that fails (its case moved
    meanwhile), the timer is left pending, as it was, for a later sweep."""
    runaway = limit_exceeded(exc) is not None
    if runaway:
        log.warning("timer %s: the diagram went over its script limits: %s", timer_id, exc)
    else:
        log.exception("timer %s failed", timer_id)
    try:
        with session.begin_nested():
            (_record_runaway if runaway else _record_failure)(session, timer_id, exc, at)
    except StaleDataError:
        pass
