"""The delivery sweep's trigger: a job beside the timer sweep in the same APScheduler, or a loop of its own.

APScheduler only calls `sweep`; `webhooks.delivery.deliver_due` does the work. A database that is
away is logged and tried again at the next run, like the timer sweep.
"""

from __future__ import annotations

import logging
import threading

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import Clock, utcnow
from engine.security import audit
from engine.settings import Settings
from webhooks.delivery import DB_UNAVAILABLE, deliver_due
from webhooks.destinations import parse_allowed

log = logging.getLogger(__name__)
BATCH = 100


def sweep(session_factory: sessionmaker[Session], settings: Settings, clock: Clock) -> int:
    """One delivery pass; returns how many attempts it made."""
    audit.set_origin("scheduler")
    try:
        made = deliver_due(session_factory, clock.now(), allowed=parse_allowed(settings.webhook_allowed_hosts),
                           timeout=settings.webhook_timeout, limit=BATCH)
    except DB_UNAVAILABLE as exc:
        log.warning("webhook sweep: the database is unavailable, retrying later (%s)",
                    (str(exc).splitlines() or ["?"])[0])
        return 0
    if made:
        log.info("made %d webhook delivery attempt(s)", made)
    return made


def add_job(scheduler: BaseScheduler, session_factory: sessionmaker[Session], settings: Settings,
            clock: Clock) -> None:
    parse_allowed(settings.webhook_allowed_hosts)  # a bad TSUNAGU_WEBHOOK_ALLOWED_HOSTS stops start-up, loudly
    scheduler.add_job(sweep, "interval", args=(session_factory, settings, clock), seconds=settings.webhook_interval,
                      next_run_time=utcnow(), max_instances=1, coalesce=True, id="webhook-sweep",
                      misfire_grace_time=None)


def run(session_factory: sessionmaker[Session], settings: Settings, clock: Clock, stop: threading.Event) -> None:
    """Sweep every `settings.webhook_interval` seconds (at once again while a backlog remains) until `stop`."""
    while not stop.is_set():
        try:
            made = sweep(session_factory, settings, clock)
        except Exception:
            log.exception("webhook sweep failed; trying again in %ss", settings.webhook_interval)
            made = 0
        if made < BATCH:
            stop.wait(settings.webhook_interval)
