"""The delivery sweep: outbox events to subscribers, at least once, in order per case and subscription.

Fan-out: the sweep takes outbox rows not yet fanned out (`delivered_at` NULL; SKIP LOCKED on
PostgreSQL, so several sweepers share them), adds one `webhook_deliveries` row for each subscription
that asked for the event's type and is not disabled, and marks the rows, in one transaction. The
write path stays as it was (one outbox row per change); a subscription sees events from its
creation on.

Delivery, per row: claim (a conditional UPDATE setting a lease; commit) → sign and POST outside any
transaction → record the attempt and the outcome (commit). A sweeper killed mid-send leaves the
lease to run out, and the row is sent again: at least once, never lost. Only the oldest pending
event of a (case, subscription) pair may be claimed, so a later event waits while an earlier one
retries (until that one is delivered or dead).

Outcomes: 2xx delivered; 410 Gone disables the subscription; anything else (3xx included, no
answer, a refused destination) is retried on the Standard Webhooks schedule with ±15 % jitter, or
later if the receiver's Retry-After says so (at most a day), and is dead after the last attempt.
A subscription whose attempts have all failed for five days is disabled; administrators see why
on the webhooks page and in the audit trail.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from sqlalchemy import exists, or_, select, true, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, aliased, sessionmaker

from engine.models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookSubscription
from engine.ops.db import begin_write
from engine.security import audit
from engine.status import DeliveryStatus, WebhookStatus
from webhooks import sender, signing
from webhooks.destinations import Allowed, Resolver, UnsafeDestination, parse_url, resolve

log = logging.getLogger(__name__)

# Seconds to wait before attempt n+1 after attempt n failed (n = 1..9); ten attempts in all.
SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
MAX_ATTEMPTS = len(SCHEDULE) + 1
JITTER = 0.15
MAX_RETRY_AFTER = 86400
FAILING_LIMIT = timedelta(days=5)
TIMEOUT = 15.0
FAN_OUT_BATCH = 500
DB_UNAVAILABLE = (OperationalError, InterfaceError)


def retry_delay(attempts: int, retry_after: str | None, now: datetime,
                rand: Callable[[], float] = random.random) -> timedelta | None:
    """How long to wait after the `attempts`-th failed attempt; None when the schedule is exhausted."""
    if attempts >= MAX_ATTEMPTS:
        return None
    seconds = SCHEDULE[attempts - 1] * (1 + JITTER * (2 * rand() - 1))
    asked = parse_retry_after(retry_after, now)
    if asked is not None:
        seconds = max(seconds, min(asked, MAX_RETRY_AFTER))
    return timedelta(seconds=seconds)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from `now` (delta-seconds or an HTTP date), None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def message(event: OutboxEvent) -> bytes:
    """The body: {"type", "timestamp", "data"}, data being the event's minimal payload and its id."""
    body = {"type": event.kind, "timestamp": event.created_at.isoformat(),
            "data": {"event_id": event.id, **(event.payload or {})}}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def message_id(event: OutboxEvent) -> str:
    """The same for every attempt of an event, so receivers can drop duplicates."""
    return f"evt_{event.id}"


def signing_secrets(sub: WebhookSubscription, at: datetime) -> list[str]:
    keys = [sub.secret]
    if sub.previous_secret and sub.previous_valid_until and sub.previous_valid_until > at:
        keys.append(sub.previous_secret)
    return keys


# ---------------------------------------------------------------- fan-out


def fan_out(session_factory: sessionmaker[Session], now: datetime, batch: int = FAN_OUT_BATCH) -> int:
    """Turn outbox events not yet fanned out into deliveries. Returns how many events it handled."""
    total = 0
    while True:
        with session_factory() as session:
            # A read first: an idle sweep takes no write lock (SQLite has one for the whole database).
            if session.scalar(select(OutboxEvent.id).where(OutboxEvent.delivered_at.is_(None)).limit(1)) is None:
                return total
            session.rollback()
            begin_write(session)
            events = list(session.scalars(
                select(OutboxEvent).where(OutboxEvent.delivered_at.is_(None)).order_by(OutboxEvent.id)
                .limit(batch).with_for_update(skip_locked=True)))
            if not events:
                session.rollback()
                return total
            subs = list(session.scalars(select(WebhookSubscription)
                                        .where(WebhookSubscription.status != WebhookStatus.DISABLED)))
            for event in events:
                for sub in subs:
                    if event.kind in sub.events and sub.created_at <= event.created_at:
                        session.add(WebhookDelivery(subscription_id=sub.id, event_id=event.id, case_id=event.case_id,
                                                    kind=event.kind, status=DeliveryStatus.PENDING, attempts=0,
                                                    next_attempt_at=now, created_at=now))
            session.execute(update(OutboxEvent).where(OutboxEvent.id.in_([e.id for e in events]))
                            .values(delivered_at=now).execution_options(synchronize_session=False))
            session.commit()
        total += len(events)
        if len(events) < batch:
            return total


# ---------------------------------------------------------------- delivery


def lease(timeout: float) -> timedelta:
    """Well beyond the send timeout, so a live sweeper keeps its claim to the end of its attempt."""
    return timedelta(seconds=4 * timeout)


def _claim(session: Session, now: datetime, worker: str, tried: list[int], timeout: float) -> int | None:
    """Lease the next deliverable row to `worker`; its id, or None when nothing is due."""
    d, earlier = WebhookDelivery, aliased(WebhookDelivery)
    blocked = exists().where(earlier.subscription_id == d.subscription_id, earlier.case_id == d.case_id,
                             earlier.status == DeliveryStatus.PENDING, earlier.event_id < d.event_id)
    active = select(WebhookSubscription.id).where(WebhookSubscription.status == WebhookStatus.ACTIVE)
    unleased = or_(d.claimed_until.is_(None), d.claimed_until < now)
    free = (select(d.id)
            .where(d.status == DeliveryStatus.PENDING, d.next_attempt_at <= now, unleased,
                   d.subscription_id.in_(active), ~blocked, d.id.not_in(tried) if tried else true())
            .order_by(d.next_attempt_at, d.id).limit(1)
            .with_for_update(skip_locked=True, of=d).scalar_subquery())
    return session.scalar(
        update(d).where(d.id == free, d.status == DeliveryStatus.PENDING, unleased)
        .values(claimed_by=worker, claimed_until=now + lease(timeout)).returning(d.id)
        .execution_options(synchronize_session=False))


def _anything_due(session: Session, now: datetime) -> bool:
    d = WebhookDelivery
    return session.scalar(select(d.id).where(d.status == DeliveryStatus.PENDING, d.next_attempt_at <= now,
                                             or_(d.claimed_until.is_(None), d.claimed_until < now)).limit(1)) is not None


def _send(session_factory: sessionmaker[Session], delivery_id: int, at: datetime, allowed: Allowed,
          timeout: float, resolver: Resolver) -> sender.Outcome | None:
    with session_factory() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        sub = session.get(WebhookSubscription, delivery.subscription_id) if delivery else None
        if delivery is None or sub is None:
            return None
        body, msg_id, keys, url = message(delivery.event), message_id(delivery.event), signing_secrets(sub, at), sub.url
        session.rollback()  # nothing is held while the receiver answers
    headers = signing.signed_headers(keys, msg_id, at, body)
    try:
        target = parse_url(url)
        addresses = resolve(target, allowed, resolver)
    except UnsafeDestination as exc:
        return sender.Outcome(None, 0, f"destination refused: {exc}"[:500])
    return sender.post(target, addresses, headers, body, timeout)


def _disable(session: Session, sub: WebhookSubscription, at: datetime, reason: str) -> None:
    sub.status, sub.status_reason, sub.updated_at = WebhookStatus.DISABLED, reason, at
    audit.record(session, None, audit.Action.WEBHOOK_DISABLE, at,
                 detail={"subscription": sub.id, "url": sub.url, "reason": reason}, actor_name="webhooks")
    log.warning("webhook subscription %s (%s) disabled: %s", sub.id, sub.url, reason)


def _record(session_factory: sessionmaker[Session], delivery_id: int, outcome: sender.Outcome, sent_at: datetime,
            at: datetime, worker: str, rand: Callable[[], float]) -> None:
    """Log the attempt (made at `sent_at`) and act on its outcome (known at `at`)."""
    with session_factory() as session:
        begin_write(session)
        delivery = session.get(WebhookDelivery, delivery_id)
        sub = session.get(WebhookSubscription, delivery.subscription_id) if delivery else None
        if delivery is None or sub is None:
            session.rollback()  # the subscription was deleted meanwhile
            return
        delivery.attempts += 1
        session.add(WebhookAttempt(delivery_id=delivery.id, subscription_id=sub.id, event_id=delivery.event_id,
                                   kind=delivery.kind, attempt=delivery.attempts, at=sent_at, status_code=outcome.status,
                                   latency_ms=outcome.latency_ms, error=outcome.error))
        delivery.last_status, delivery.last_error = outcome.status, outcome.error
        if delivery.claimed_by == worker:
            delivery.claimed_by, delivery.claimed_until = None, None
        if delivery.status != DeliveryStatus.PENDING:
            session.commit()  # another sweeper took it over after our lease ran out, and finished it
            return
        if outcome.status is not None and 200 <= outcome.status < 300:
            delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, at
            sub.failing_since = None
        elif outcome.status == 410:
            delivery.status = DeliveryStatus.DEAD
            if sub.status != WebhookStatus.DISABLED:
                _disable(session, sub, at, "受信側が 410 Gone を返しました / the receiver answered 410 Gone")
        else:
            wait = retry_delay(delivery.attempts, outcome.retry_after, at, rand)
            if wait is None:
                delivery.status = DeliveryStatus.DEAD
            else:
                delivery.next_attempt_at = at + wait
            sub.failing_since = sub.failing_since or at
            if at - sub.failing_since >= FAILING_LIMIT and sub.status == WebhookStatus.ACTIVE:
                _disable(session, sub, at, "5 日間配信に失敗し続けました / every delivery failed for 5 days")
        session.commit()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:100]


def deliver_due(session_factory: sessionmaker[Session], now: datetime, *, allowed: Allowed,
                timeout: float = TIMEOUT, limit: int = 100, worker: str | None = None,
                resolver: Resolver = socket.getaddrinfo, rand: Callable[[], float] = random.random) -> int:
    """Fan out new outbox events, then make up to `limit` delivery attempts that are due. Returns
    how many attempts this call made. Any number of calls may run at once, in any processes."""
    fan_out(session_factory, now)
    worker = worker or worker_name()
    started, tried, made = time.monotonic(), [], 0
    for _ in range(limit):
        # `now` is the sweep's start; a long sweep keeps its leases and times honest.
        at = now + timedelta(seconds=time.monotonic() - started)
        with session_factory() as session:
            if not _anything_due(session, at):
                break
            session.rollback()
            begin_write(session)
            delivery_id = _claim(session, at, worker, tried, timeout)
            if delivery_id is None:
                session.rollback()
                break
            session.commit()
        tried.append(delivery_id)
        try:
            outcome = _send(session_factory, delivery_id, at, allowed, timeout, resolver)
        except DB_UNAVAILABLE:
            raise  # the lease runs out and a later sweep sends it
        except Exception as exc:
            log.exception("webhook delivery %s failed before sending", delivery_id)
            outcome = sender.Outcome(None, 0, f"internal error: {type(exc).__name__}")
        if outcome is None:
            continue
        try:
            _record(session_factory, delivery_id, outcome, at, now + timedelta(seconds=time.monotonic() - started),
                    worker, rand)
        except DB_UNAVAILABLE:
            raise
        except Exception:
            log.exception("webhook delivery %s: recording the attempt failed; retried after its lease", delivery_id)
        made += 1
    return made
