"""Webhook subscriptions, administered by administrators: create, list, change, pause, delete,
rotate the secret, send a test ping, read the delivery log, re-send a dead event.

Plain values in, rows out (no Flask); every change is audited in its own transaction. A secret
is returned once, when created or rotated, and never shown again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from engine.errors import Conflict, Forbidden, Invalid, NotFound
from engine.models import OutboxEvent, User, WebhookAttempt, WebhookDelivery, WebhookSubscription
from engine.ops.db import command
from engine.security import audit
from engine.status import SUBSCRIBABLE_EVENTS, DeliveryStatus, OutboxKind, Role, WebhookStatus
from engine.workflow.limits import check_int
from webhooks import signing
from webhooks.destinations import Allowed, UnsafeDestination, check_for_subscription

MAX_DESCRIPTION = 500
SETTABLE_STATUS = (WebhookStatus.ACTIVE, WebhookStatus.PAUSED)


def require_admin(actor: User) -> None:
    if Role.ADMIN not in actor.roles:
        raise Forbidden("Webhook の管理は管理者のみが行えます / only an administrator may manage webhooks")


def _url(url: Any, allowed: Allowed) -> str:
    try:
        check_for_subscription(url, allowed)
    except UnsafeDestination as exc:
        raise Invalid(f"送信先 URL が使えません / url: {exc}", {"url": str(exc)}) from None
    return url.strip()


def _events(events: Any) -> list[str]:
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise Invalid("イベントを 1 つ以上指定してください / events: a non-empty list of event types is required",
                      {"events": "a non-empty list of event types"})
    unknown = sorted(set(events) - set(SUBSCRIBABLE_EVENTS))
    if unknown:
        raise Invalid(f"不明なイベントです / events: unknown event type(s) {', '.join(unknown)}",
                      {"events": f"unknown: {', '.join(unknown)}; known: {', '.join(SUBSCRIBABLE_EVENTS)}"})
    return list(dict.fromkeys(events))


def _description(description: Any) -> str:
    if description is None:
        return ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise Invalid(f"説明は {MAX_DESCRIPTION} 文字以内です / description: at most {MAX_DESCRIPTION} characters",
                      {"description": f"a text of at most {MAX_DESCRIPTION} characters"})
    return description.strip()


def _get(session: Session, sub_id: Any) -> WebhookSubscription:
    sub = session.get(WebhookSubscription, check_int(sub_id, "sub_id", 1))
    if sub is None:
        raise NotFound("Webhook が見つかりません / webhook subscription not found")
    return sub


def _detail(sub: WebhookSubscription, **more: Any) -> dict[str, Any]:
    return {"subscription": sub.id, "url": sub.url, **more}


@command
def create_subscription(session: Session, actor: User, url: Any, events: Any, description: Any, now: datetime,
                        allowed: Allowed) -> tuple[WebhookSubscription, str]:
    """A new active subscription and its secret (shown this once)."""
    require_admin(actor)
    sub = WebhookSubscription(url=_url(url, allowed), events=_events(events), description=_description(description),
                              secret=signing.new_secret(), status=WebhookStatus.ACTIVE, created_by=actor.name,
                              created_at=now, updated_at=now)
    session.add(sub)
    session.flush()
    audit.record(session, actor, audit.Action.WEBHOOK_CREATE, now, detail=_detail(sub, events=sub.events))
    session.commit()
    return sub, sub.secret


def list_subscriptions(session: Session, actor: User) -> list[WebhookSubscription]:
    require_admin(actor)
    return list(session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id)))


def get_subscription(session: Session, actor: User, sub_id: Any) -> WebhookSubscription:
    require_admin(actor)
    return _get(session, sub_id)


@command
def change_subscription(session: Session, actor: User, sub_id: Any, now: datetime, allowed: Allowed, *,
                        url: Any = None, events: Any = None, description: Any = None,
                        status: Any = None) -> WebhookSubscription:
    """Change the URL, events, description, or pause (status "paused") and resume ("active"; this also
    re-enables a disabled subscription, whose held deliveries then go out in order)."""
    require_admin(actor)
    sub = _get(session, sub_id)
    changes: dict[str, Any] = {}
    if url is not None:
        sub.url = changes["url"] = _url(url, allowed)
    if events is not None:
        sub.events = changes["events"] = _events(events)
    if description is not None:
        sub.description = changes["description"] = _description(description)
    if status is not None:
        if status not in SETTABLE_STATUS:
            raise Invalid("状態は active か paused です / status: active or paused", {"status": "active or paused"})
        if status != sub.status:
            changes["status"] = status
            sub.status, sub.status_reason = status, None
            if status == WebhookStatus.ACTIVE:
                sub.failing_since = None
    sub.updated_at = now
    audit.record(session, actor, audit.Action.WEBHOOK_CHANGE, now, detail=_detail(sub, changes=changes))
    session.commit()
    return sub


@command
def delete_subscription(session: Session, actor: User, sub_id: Any, now: datetime) -> None:
    """Remove the subscription with its pending deliveries and its log."""
    require_admin(actor)
    sub = _get(session, sub_id)
    audit.record(session, actor, audit.Action.WEBHOOK_DELETE, now, detail=_detail(sub))
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.subscription_id == sub.id))
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.subscription_id == sub.id))
    session.delete(sub)
    session.commit()


@command
def rotate_secret(session: Session, actor: User, sub_id: Any, now: datetime, grace: timedelta
                  ) -> tuple[WebhookSubscription, str]:
    """A new secret; the old one keeps signing (both signatures sent) for `grace`."""
    require_admin(actor)
    sub = _get(session, sub_id)
    sub.previous_secret, sub.previous_valid_until = sub.secret, now + grace
    sub.secret, sub.updated_at = signing.new_secret(), now
    audit.record(session, actor, audit.Action.WEBHOOK_ROTATE, now,
                 detail=_detail(sub, previous_valid_until=sub.previous_valid_until.isoformat()))
    session.commit()
    return sub, sub.secret


@command
def ping(session: Session, actor: User, sub_id: Any, now: datetime) -> WebhookDelivery:
    """Queue a `webhook.ping` for this subscription only; the delivery sweep sends it like any event."""
    require_admin(actor)
    sub = _get(session, sub_id)
    if sub.status != WebhookStatus.ACTIVE:
        raise Conflict(f"この Webhook は {sub.status} です。再開してから送ってください / "
                       f"the subscription is {sub.status}; resume it first")
    # Already fanned out (delivered_at set): it goes to this subscription, not to every one.
    event = OutboxEvent(kind=OutboxKind.WEBHOOK_PING, case_id=None, payload={"subscription_id": sub.id},
                        created_at=now, delivered_at=now)
    session.add(event)
    session.flush()
    delivery = WebhookDelivery(subscription_id=sub.id, event_id=event.id, case_id=None, kind=event.kind,
                               status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now, created_at=now)
    session.add(delivery)
    audit.record(session, actor, audit.Action.WEBHOOK_PING, now, detail=_detail(sub, event_id=event.id))
    session.commit()
    return delivery


def attempts(session: Session, actor: User, sub_id: Any, limit: int = 1000, offset: int = 0,
             newest_first: bool = False) -> list[WebhookAttempt]:
    """The delivery log, oldest attempt first (or newest first)."""
    require_admin(actor)
    sub = _get(session, sub_id)
    order = WebhookAttempt.id.desc() if newest_first else WebhookAttempt.id
    return list(session.scalars(select(WebhookAttempt).where(WebhookAttempt.subscription_id == sub.id)
                                .order_by(order).limit(limit).offset(offset)))


def deliveries(session: Session, actor: User, sub_id: Any, status: Any = None, limit: int = 1000
               ) -> list[WebhookDelivery]:
    """The subscription's events and where each stands (e.g. status "dead": the ones to re-send)."""
    require_admin(actor)
    sub = _get(session, sub_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub.id)
    if status is not None:
        if status not in tuple(DeliveryStatus):
            raise Invalid("状態は pending, delivered, dead のいずれかです / status: pending, delivered or dead",
                          {"status": "pending, delivered or dead"})
        stmt = stmt.where(WebhookDelivery.status == status)
    return list(session.scalars(stmt.order_by(WebhookDelivery.event_id.desc()).limit(limit)))


def counts(session: Session, sub_ids: list[int]) -> dict[int, dict[str, int]]:
    """{subscription id: {status: number of deliveries}} for the list page."""
    out: dict[int, dict[str, int]] = {i: {} for i in sub_ids}
    rows = session.execute(select(WebhookDelivery.subscription_id, WebhookDelivery.status, func.count())
                           .where(WebhookDelivery.subscription_id.in_(sub_ids))
                           .group_by(WebhookDelivery.subscription_id, WebhookDelivery.status))
    for sub_id, status, n in rows:
        out[sub_id][status] = n
    return out


@command
def resend(session: Session, actor: User, sub_id: Any, event_id: Any, now: datetime) -> WebhookDelivery:
    """Send a dead (or already delivered) event again, from the start of the retry schedule."""
    require_admin(actor)
    sub = _get(session, sub_id)
    delivery = session.scalar(select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub.id,
                                                            WebhookDelivery.event_id == check_int(event_id, "event_id", 1)))
    if delivery is None:
        raise NotFound("この Webhook にそのイベントはありません / no such event for this subscription")
    if delivery.status == DeliveryStatus.PENDING:
        raise Conflict("このイベントは送信待ちです / the event is already waiting to be sent")
    delivery.status, delivery.attempts, delivery.next_attempt_at = DeliveryStatus.PENDING, 0, now
    delivery.claimed_by = delivery.claimed_until = delivery.delivered_at = None
    audit.record(session, actor, audit.Action.WEBHOOK_RESEND, now, detail=_detail(sub, event_id=event_id))
    session.commit()
    return delivery
