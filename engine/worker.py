"""The scheduler: APScheduler only triggers the timer sweep; `engine.timers` does the work.

The first sweep runs at once, so timers that fell due while the server was down fire at
start-up; after that every `interval` seconds. Several processes may run it together.
"""

from __future__ import annotations

import logging
from datetime import UTC

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import Clock, utcnow
from engine.env import Env
from engine.timers import fire_due

log = logging.getLogger(__name__)


def sweep(session_factory: sessionmaker[Session], env: Env, clock: Clock) -> int:
    fired = fire_due(session_factory, env, clock.now())
    if fired:
        log.info("fired %d timer(s)", fired)
    return fired


def start_scheduler(session_factory: sessionmaker[Session], env: Env, clock: Clock,
                    interval: float) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(sweep, "interval", args=(session_factory, env, clock), seconds=interval,
                      next_run_time=utcnow(), max_instances=1, coalesce=True, id="timer-sweep",
                      misfire_grace_time=None)
    scheduler.start()
    return scheduler
