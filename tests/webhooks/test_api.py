"""The webhooks API contract: create (secret once), list, change, pause, delete, rotate, ping, the
delivery log, dead events and re-sending; administrators only; clear 422s naming the field."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from engine.clock import utcnow
from engine.models import AuditRecord, WebhookDelivery
from engine.status import DeliveryStatus
from tests.webhooks.receiver import Receiver
from webhooks.delivery import deliver_due
from webhooks.destinations import parse_allowed


@pytest.fixture
def settings(settings):  # noqa: ANN001, ANN201
    return dataclasses.replace(settings, webhook_allowed_hosts="127.0.0.1")


def test_create_answers_the_contract_and_the_secret_only_once(api) -> None:  # noqa: ANN001
    admin = api("admin")
    r = admin.post("/api/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["case.created"],
                                          "description": "福祉総合システム"})
    assert r.status_code == 201, r.json
    body = r.json
    assert {"id", "url", "events", "secret"} <= set(body)
    assert body["secret"].startswith("whsec_") and body["events"] == ["case.created"]
    listed = admin.get("/api/webhooks").json
    assert [w["id"] for w in listed] == [body["id"]] and "secret" not in listed[0]
    assert listed[0]["status"] == "active"


@pytest.mark.parametrize("body, field", [
    ({"url": "ftp://127.0.0.1/x", "events": ["case.created"]}, "url"),
    ({"url": "http://10.0.0.8/x", "events": ["case.created"]}, "url"),
    ({"url": "http://user:pw@127.0.0.1/x", "events": ["case.created"]}, "url"),
    ({"url": "http://127.0.0.1/x", "events": []}, "events"),
    ({"url": "http://127.0.0.1/x", "events": ["case.exploded"]}, "events"),
    ({"url": "http://127.0.0.1/x", "events": "case.created"}, "events"),
    ({"events": ["case.created"]}, "url"),
    ({"url": "http://127.0.0.1/x", "events": ["case.created"], "description": "x" * 501}, "description"),
])
def test_bad_input_is_a_422_naming_the_field_and_changes_nothing(api, body: dict, field: str) -> None:  # noqa: ANN001
    admin = api("admin")
    r = admin.post("/api/webhooks", json=body)
    assert r.status_code == 422, r.json
    assert field in r.json["error"]["fields"] and r.json["error"]["message"]
    assert admin.get("/api/webhooks").json == []


def test_only_administrators_manage_webhooks(api) -> None:  # noqa: ANN001
    for who in ("caseworker", "secretariat", "lead", "supervisor"):
        assert api(who).get("/api/webhooks").status_code == 403
        assert api(who).post("/api/webhooks", json={"url": "http://127.0.0.1/x", "events": ["case.created"]}
                             ).status_code == 403


def test_pause_change_rotate_and_delete(api, session) -> None:  # noqa: ANN001
    admin = api("admin")
    sub = admin.post("/api/webhooks", json={"url": "http://127.0.0.1:9/a", "events": ["case.created"]}).json
    r = admin.patch(f"/api/webhooks/{sub['id']}", json={"status": "paused", "events": ["task.created", "timer.fired"]})
    assert r.status_code == 200 and r.json["status"] == "paused" and r.json["events"] == ["task.created", "timer.fired"]
    assert admin.patch(f"/api/webhooks/{sub['id']}", json={"status": "disabled"}).status_code == 422
    assert admin.patch(f"/api/webhooks/{sub['id']}", json={"url": "http://169.254.169.254/"}).status_code == 422
    rotated = admin.post(f"/api/webhooks/{sub['id']}/rotate").json
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != sub["secret"]
    assert rotated["previous_secret_valid_until"]
    assert admin.delete(f"/api/webhooks/{sub['id']}").status_code == 204
    assert admin.get(f"/api/webhooks/{sub['id']}").status_code == 404
    assert admin.delete(f"/api/webhooks/{sub['id']}").status_code == 404
    actions = [r.action for r in session.scalars(select(AuditRecord).where(AuditRecord.action.like("webhook.%")))]
    assert actions == ["webhook.create", "webhook.change", "webhook.rotate", "webhook.delete"]


def test_ping_log_dead_events_and_resend(api, session_factory, clock) -> None:  # noqa: ANN001
    clock.set(utcnow())
    admin = api("admin")
    with Receiver() as rx:
        sub = admin.post("/api/webhooks", json={"url": rx.url, "events": ["case.created"]}).json
        assert admin.post(f"/api/webhooks/{sub['id']}/ping").status_code == 202
        assert deliver_due(session_factory, clock.now(), allowed=parse_allowed("127.0.0.1")) == 1
        (request,) = rx.requests
        assert Webhook(sub["secret"]).verify(request.body, request.headers)["type"] == "webhook.ping"
        log = admin.get(f"/api/webhooks/{sub['id']}/deliveries").json
        assert len(log) == 1
        entry = log[0]
        assert entry["type"] == "webhook.ping" and entry["attempt"] == 1 and entry["status"] == 200
        assert entry["at"] and "error" not in entry
        event_id = entry["event_id"]
        assert admin.post(f"/api/webhooks/{sub['id']}/deliveries/{event_id}/resend").status_code == 202
        assert admin.post(f"/api/webhooks/{sub['id']}/deliveries/{event_id}/resend").status_code == 409
        with session_factory() as s:  # as if every attempt had failed
            s.execute(update(WebhookDelivery).values(status=DeliveryStatus.DEAD))
            s.commit()
        dead = admin.get(f"/api/webhooks/{sub['id']}/events?status=dead").json
        assert [d["event_id"] for d in dead] == [event_id]
        assert admin.post(f"/api/webhooks/{sub['id']}/deliveries/{event_id}/resend").status_code == 202
        assert deliver_due(session_factory, clock.now(), allowed=parse_allowed("127.0.0.1")) == 1
    assert len(rx.requests) == 2 and rx.requests[0].headers["webhook-id"] == rx.requests[1].headers["webhook-id"]
    assert admin.post(f"/api/webhooks/{sub['id']}/deliveries/999999/resend").status_code == 404
    assert admin.get(f"/api/webhooks/{sub['id']}/events?status=lost").status_code == 422


def test_a_paused_subscription_cannot_be_pinged(api) -> None:  # noqa: ANN001
    admin = api("admin")
    sub = admin.post("/api/webhooks", json={"url": "http://127.0.0.1:9/a", "events": ["case.created"]}).json
    admin.patch(f"/api/webhooks/{sub['id']}", json={"status": "paused"})
    r = admin.post(f"/api/webhooks/{sub['id']}/ping")
    assert r.status_code == 409 and "paused" in r.json["error"]["message"]
