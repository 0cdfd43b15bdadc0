"""The webhooks page (administrators): create with the secret shown once, pause and resume, a
disabled subscription's reason in plain sight, the delivery log and dead events with re-send."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select, update

from engine.models import WebhookDelivery, WebhookSubscription
from engine.status import DeliveryStatus, WebhookStatus
from tests.ui.test_pages import text
from tests.webhooks.receiver import Answer, Receiver
from webhooks.delivery import deliver_due
from webhooks.destinations import parse_allowed


@pytest.fixture
def settings(settings):  # noqa: ANN001, ANN201
    return dataclasses.replace(settings, webhook_allowed_hosts="127.0.0.1")


def test_admin_creates_a_webhook_and_sees_its_secret_once(staff, session) -> None:  # noqa: ANN001
    admin = staff("admin")
    r = admin.post("/admin/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["case.created", "task.created"],
                                       "description": "福祉総合システム"})
    assert r.status_code == 200
    (sub,) = session.scalars(select(WebhookSubscription))
    page = text(r)
    assert sub.secret in page and "今だけ表示" in page and "福祉総合システム" in page
    again = text(admin.get("/admin/webhooks"))
    assert "http://127.0.0.1:9/hook" in again and sub.secret not in again
    assert "no-store" in r.headers["Cache-Control"]  # the secret stays out of caches


def test_a_refused_url_is_explained_and_nothing_is_created(staff, session) -> None:  # noqa: ANN001
    r = staff("admin").post("/admin/webhooks", {"url": "http://169.254.169.254/latest", "events": ["case.created"]})
    assert r.status_code == 422
    assert "送信先 URL が使えません" in text(r) and "link-local" in text(r)
    assert session.scalar(select(WebhookSubscription)) is None


def test_pause_resume_and_a_disabled_reason(staff, session_factory) -> None:  # noqa: ANN001
    admin = staff("admin")
    admin.post("/admin/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["case.created"]})
    with session_factory() as s:
        sub_id = s.scalar(select(WebhookSubscription.id))
    admin.post(f"/admin/webhooks/{sub_id}/status", {"status": "paused"})
    assert "一時停止中" in text(admin.get("/admin/webhooks"))
    with session_factory() as s:  # as the delivery sweep does after a 410
        s.execute(update(WebhookSubscription).values(status=WebhookStatus.DISABLED,
                                                    status_reason="受信側が 410 Gone を返しました / 410 Gone"))
        s.commit()
    assert "停止されました: 受信側が 410 Gone を返しました" in text(admin.get("/admin/webhooks"))
    admin.post(f"/admin/webhooks/{sub_id}/status", {"status": "active"})
    with session_factory() as s:
        assert s.get(WebhookSubscription, sub_id).status == WebhookStatus.ACTIVE


def test_log_dead_events_and_resend(staff, session_factory, clock) -> None:  # noqa: ANN001
    admin = staff("admin")
    with Receiver(Answer(500), Answer(200)) as rx:
        admin.post("/admin/webhooks", {"url": rx.url, "events": ["case.created"]})
        with session_factory() as s:
            sub_id = s.scalar(select(WebhookSubscription.id))
        assert admin.post(f"/admin/webhooks/{sub_id}/ping").status_code == 302
        deliver_due(session_factory, clock.now(), allowed=parse_allowed("127.0.0.1"))
        with session_factory() as s:
            s.execute(update(WebhookDelivery).values(status=DeliveryStatus.DEAD))
            s.commit()
            event_id = s.scalar(select(WebhookDelivery.event_id))
        page = text(admin.get(f"/admin/webhooks/{sub_id}"))
        assert "webhook.ping" in page and "HTTP 500" in page and "再送" in page
        assert admin.post(f"/admin/webhooks/{sub_id}/events/{event_id}/resend").status_code == 302
        deliver_due(session_factory, clock.now(), allowed=parse_allowed("127.0.0.1"))
    assert len(rx.requests) == 2
    page = text(admin.get(f"/admin/webhooks/{sub_id}"))
    assert "200" in page and "ありません" in page  # no dead events left


def test_rotating_shows_the_new_secret_once(staff, session_factory) -> None:  # noqa: ANN001
    admin = staff("admin")
    admin.post("/admin/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["case.created"]})
    with session_factory() as s:
        sub = s.scalar(select(WebhookSubscription))
    page = text(admin.post(f"/admin/webhooks/{sub.id}/rotate"))
    with session_factory() as s:
        rotated = s.get(WebhookSubscription, sub.id)
    assert rotated.secret != sub.secret and rotated.secret in page and rotated.previous_secret == sub.secret
