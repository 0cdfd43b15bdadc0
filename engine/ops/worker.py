"""The scheduler: APScheduler only triggers the timer sweep; `engine.casework.timers` does the work.
Each sweep also escalates tasks past their time limits (`engine.casework.escalation`) and forgets
webhook ids older than the replay window (`engine.security.sources`).

The first sweep runs at once, so timers that fell due while the server was down fire at
start-up; after that every `interval` seconds. Several processes may run it together.

With TSUNAGU_AUDIT_ANCHOR_FILE set, the scheduler also anchors the audit trail: every
ANCHOR_CHECK seconds it asks `audit.anchor_if_due`, which writes one line a day however
many processes ask. It runs beside the sweep, not in it, so a slow anchor disk never
delays a timer.

On SQLite it also checkpoints the WAL every CHECKPOINT_INTERVAL seconds (`wal_checkpoint`), so
that no request's commit has to (see engine.ops.db.WAL_BACKSTOP_PAGES).
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.orm import Session, sessionmaker

from engine.casework import escalation
from engine.casework.timers import DB_UNAVAILABLE, due_timer_ids, fire_due, next_due
from engine.clock import Clock, utcnow
from engine.env import Env
from engine.ops.db import CHECKPOINT_INTERVAL, WAL_BACKSTOP_PAGES, checkpoint
from engine.security import audit
from engine.security.sources import prune_received

log = logging.getLogger(__name__)
SWEEP_BATCH = 200  # fire_due's default limit: a pass that fired this many may have left more
ANCHOR_CHECK = 60.0  # seconds between asks whether the day's audit anchor is due


def sweep(session_factory: sessionmaker[Session], env: Env, clock: Clock) -> int:
    """One pass over the due timers. A database that is away (or locked) is logged, not raised:
    the next pass tries again, and the timers it left are still pending."""
    audit.set_origin("scheduler")
    try:
        fired = fire_due(session_factory, env, clock.now(), clock=clock)
        escalate(session_factory, env, clock)
        with session_factory() as session:
            prune_received(session, clock.now())
    except DB_UNAVAILABLE as exc:
        log.warning("timer sweep: the database is unavailable, retrying later (%s)", (str(exc).splitlines() or ["?"])[0])
        return 0
    if fired:
        log.info("fired %d timer(s)", fired)
    return fired


def escalate(session_factory: sessionmaker[Session], env: Env, clock: Clock) -> int:
    """Tell the tasks that passed a time limit since the last sweep. A failure here is logged:
    it must not keep the timers (or the next sweep) from running."""
    try:
        told = escalation.escalate_due(session_factory, env, clock.now())
    except DB_UNAVAILABLE:
        raise
    except Exception:
        log.exception("escalation sweep failed; trying again at the next sweep")
        return 0
    if told:
        log.info("escalated %d task(s)", told)
    return told


def anchor(session_factory: sessionmaker[Session], path: Path, clock: Clock) -> bool:
    """Write the day's audit anchor if it is due. A database that is away is logged, not
    raised (the next check tries again). True if this call wrote it."""
    try:
        return audit.anchor_if_due(session_factory, path, clock.now()) is not None
    except DB_UNAVAILABLE as exc:
        log.warning("audit anchor: the database is unavailable, retrying later (%s)",
                    (str(exc).splitlines() or ["?"])[0])
        return False


def run_anchorer(session_factory: sessionmaker[Session], path: Path, clock: Clock, stop: threading.Event,
                 every: float = ANCHOR_CHECK) -> None:
    """`tsunagu worker`'s anchor loop (a thread beside the sweep), until `stop` is set."""
    log.info("audit anchor daily in %s", path)
    while not stop.is_set():
        try:
            anchor(session_factory, path, clock)
        except Exception:
            log.exception("audit anchor failed; trying again in %ss", every)
        stop.wait(every)


def wal_checkpoint(session_factory: sessionmaker[Session]) -> None:
    """One SQLite checkpoint (`engine.ops.db.checkpoint`) off the request path; a failure is logged,
    and the next one tries again (meanwhile commits still checkpoint past the backstop)."""
    with session_factory() as session:
        engine = session.get_bind()
    try:
        busy, pages, copied = checkpoint(engine) or (0, 0, 0)
    except Exception:
        log.exception("WAL checkpoint failed; trying again in %ss", CHECKPOINT_INTERVAL)
        return
    if busy and pages - copied > WAL_BACKSTOP_PAGES // 2:
        # A reader that stays open for long keeps the WAL from being copied and started over.
        log.warning("WAL checkpoint: an open read keeps %d of %d pages in the WAL", pages - copied, pages)


def run_checkpointer(session_factory: sessionmaker[Session], stop: threading.Event,
                     every: float = CHECKPOINT_INTERVAL) -> None:
    """`tsunagu worker`'s SQLite checkpoints (a thread beside the sweep), until `stop` is set."""
    while not stop.wait(every):
        wal_checkpoint(session_factory)


def sweep_until_done(session_factory: sessionmaker[Session], env: Env, clock: Clock) -> int:
    """Sweep until no timer is due (others may be sweeping too). Returns how many this process fired.

    Stops as well when a pass fires nothing and leaves the same timers due as the pass before:
    those are failing or not yet due for Spiff, and later sweeps try them again."""
    audit.set_origin("scheduler")
    total, before = 0, None
    while True:
        fired = fire_due(session_factory, env, clock.now(), clock=clock)
        total += fired
        with session_factory() as session:
            due = set(due_timer_ids(session, clock.now(), 1000))
        if not due or (not fired and due == before):
            escalate(session_factory, env, clock)
            return total
        before = due


def run_sweeper(session_factory: sessionmaker[Session], env: Env, clock: Clock, interval: float,
                stop: threading.Event, parent_pid: int | None = None) -> None:
    """The scheduler process's loop (`tsunagu worker`): sweep every `interval` seconds, at once again
    while a backlog remains, until `stop` is set (or the process that started us is gone); and
    anchor the audit trail daily when an anchor file is configured."""
    log.info("timer sweep every %ss", interval)
    if _is_sqlite(session_factory):
        threading.Thread(target=run_checkpointer, args=(session_factory, stop), daemon=True,
                         name="wal-checkpoint").start()
    path = env.settings.audit_anchor_file
    if path is not None:
        threading.Thread(target=run_anchorer, args=(session_factory, path, clock, stop), daemon=True,
                         name="audit-anchor").start()
    while not stop.is_set():
        if parent_pid is not None and os.getppid() != parent_pid:
            log.warning("the serving process %s is gone; stopping the timer sweep", parent_pid)
            return
        began = clock.now()
        try:
            fired = sweep(session_factory, env, clock)
        except Exception:
            log.exception("timer sweep failed; trying again in %ss", interval)
            fired = 0
        if fired < SWEEP_BATCH:
            stop.wait(until_next_sweep(session_factory, clock, interval, began))


def until_next_sweep(session_factory: sessionmaker[Session], clock: Clock, interval: float,
                     swept: datetime) -> float:
    """Seconds to wait before the next pass (the last began at `swept`): `interval`, or less when a
    timer falls due sooner, so that a timer fires when it is due rather than up to a whole
    interval later. Timers due by `swept` and still pending (failing ones, or not yet due for
    Spiff) were tried in that pass and wait for the next interval."""
    try:
        with session_factory() as session:
            soonest = next_due(session, swept)
    except Exception:  # noqa: BLE001 - the pass after the interval will say what is wrong
        return interval
    if soonest is None:
        return interval
    return max(0.0, min(interval, (soonest - clock.now()).total_seconds()))


def start_scheduler(session_factory: sessionmaker[Session], env: Env, clock: Clock,
                    interval: float) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(sweep, "interval", args=(session_factory, env, clock), seconds=interval,
                      next_run_time=utcnow(), max_instances=1, coalesce=True, id="timer-sweep",
                      misfire_grace_time=None)
    if _is_sqlite(session_factory):
        scheduler.add_job(wal_checkpoint, "interval", args=(session_factory,), seconds=CHECKPOINT_INTERVAL,
                          max_instances=1, coalesce=True, id="wal-checkpoint", misfire_grace_time=None)
    if env.settings.audit_anchor_file is not None:
        scheduler.add_job(anchor, "interval", args=(session_factory, env.settings.audit_anchor_file, clock),
                          seconds=ANCHOR_CHECK, next_run_time=utcnow(), max_instances=1, coalesce=True,
                          id="audit-anchor", misfire_grace_time=None)
    scheduler.start()
    return scheduler


def _is_sqlite(session_factory: sessionmaker[Session]) -> bool:
    with session_factory() as session:
        return session.get_bind().dialect.name == "sqlite"
