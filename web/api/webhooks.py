"""Outgoing webhook subscriptions (administrators): create, list, change, pause, delete, rotate the
secret, test ping, the delivery log, events by status and re-sending."""

from __future__ import annotations

from datetime import timedelta

from flask import g
from marshmallow import Schema, fields, validate

from engine.status import SUBSCRIBABLE_EVENTS
from web.api.auth import authenticate
from web.api.blueprint import Blueprint
from web.api.schemas import ApiError
from web.extensions import db, engine_env, now
from webhooks import subscriptions
from webhooks.destinations import parse_allowed

blp = Blueprint("webhooks", __name__, url_prefix="/api", description="Outgoing webhooks (Standard Webhooks signed)")
blp.before_request(authenticate)

EVENTS_HELP = ", ".join(SUBSCRIBABLE_EVENTS)


class WebhookIn(Schema):
    url = fields.String(required=True, metadata={"description": "http(s) URL; private and loopback addresses only "
                                                                "where TSUNAGU_WEBHOOK_ALLOWED_HOSTS allows them"})
    events = fields.List(fields.String(), required=True, metadata={"description": EVENTS_HELP})
    description = fields.String(load_default=None, allow_none=True)


class WebhookChangeIn(Schema):
    url = fields.String()
    events = fields.List(fields.String())
    description = fields.String()
    status = fields.String(metadata={"description": "active or paused (active also re-enables a disabled one)"})


class WebhookOut(Schema):
    id = fields.Integer(required=True)
    url = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    description = fields.String()
    status = fields.String(metadata={"description": "active, paused or disabled"})
    status_reason = fields.String(allow_none=True, metadata={"description": "why it was disabled"})
    created_by = fields.String(allow_none=True)
    created_at = fields.DateTime()
    failing_since = fields.DateTime(allow_none=True)
    previous_secret_valid_until = fields.DateTime(allow_none=True)
    deliveries = fields.Dict(keys=fields.String(), values=fields.Integer(),
                             metadata={"description": "number of events by status: pending, delivered, dead"})


class WebhookCreatedOut(WebhookOut):
    secret = fields.String(required=True, metadata={"description": "whsec_ secret; shown only now"})


class SecretOut(Schema):
    id = fields.Integer()
    secret = fields.String(metadata={"description": "the new whsec_ secret; shown only now"})
    previous_secret_valid_until = fields.DateTime(metadata={"description": "until then both secrets sign"})


class AttemptOut(Schema):
    event_id = fields.Integer(required=True)
    type = fields.String(required=True)
    attempt = fields.Integer(required=True)
    status = fields.Integer(allow_none=True, metadata={"description": "HTTP status; null when there was no answer"})
    at = fields.DateTime(required=True)
    latency_ms = fields.Integer(allow_none=True)
    error = fields.String()


class LogQuery(Schema):
    limit = fields.Integer(load_default=1000, validate=validate.Range(1, 10000))
    offset = fields.Integer(load_default=0, validate=validate.Range(0))


class EventsQuery(Schema):
    status = fields.String(load_default=None, metadata={"description": "pending, delivered or dead"})
    limit = fields.Integer(load_default=1000, validate=validate.Range(1, 10000))


class DeliveryOut(Schema):
    event_id = fields.Integer(required=True)
    type = fields.String(required=True)
    case_id = fields.String(allow_none=True)
    status = fields.String(required=True, metadata={"description": "pending, delivered or dead"})
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime(allow_none=True)
    last_status = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)


def _allowed():  # noqa: ANN202
    return parse_allowed(engine_env().settings.webhook_allowed_hosts)


def _out(sub, counts: dict[str, int] | None = None) -> dict:  # noqa: ANN001
    return {"id": sub.id, "url": sub.url, "events": sub.events, "description": sub.description, "status": sub.status,
            "status_reason": sub.status_reason, "created_by": sub.created_by, "created_at": sub.created_at,
            "failing_since": sub.failing_since, "previous_secret_valid_until": sub.previous_valid_until,
            "deliveries": counts if counts is not None else subscriptions.counts(db.session, [sub.id])[sub.id]}


def _delivery_out(d) -> dict:  # noqa: ANN001
    return {"event_id": d.event_id, "type": d.kind, "case_id": d.case_id, "status": d.status, "attempts": d.attempts,
            "next_attempt_at": d.next_attempt_at if d.status == "pending" else None, "last_status": d.last_status,
            "last_error": d.last_error, "delivered_at": d.delivered_at}


@blp.route("/webhooks", methods=["POST"])
@blp.arguments(WebhookIn)
@blp.response(201, WebhookCreatedOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(422, schema=ApiError)
def create(body):  # noqa: ANN001, ANN201
    """Subscribe a URL to event types; the answer carries the signing secret, shown only this once."""
    sub, secret = subscriptions.create_subscription(db.session, g.actor, body["url"], body["events"],
                                                    body.get("description"), now(), _allowed())
    return {**_out(sub, {}), "secret": secret}


@blp.route("/webhooks")
@blp.response(200, WebhookOut(many=True))
@blp.alt_response(403, schema=ApiError)
def list_webhooks():  # noqa: ANN201
    """Every subscription with its state and counts of events by status (administrators)."""
    subs = subscriptions.list_subscriptions(db.session, g.actor)
    counts = subscriptions.counts(db.session, [s.id for s in subs])
    return [_out(s, counts[s.id]) for s in subs]


@blp.route("/webhooks/<id:sub_id>")
@blp.response(200, WebhookOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
def get_webhook(sub_id: int):  # noqa: ANN201
    """One subscription."""
    return _out(subscriptions.get_subscription(db.session, g.actor, sub_id))


@blp.route("/webhooks/<id:sub_id>", methods=["PATCH"])
@blp.arguments(WebhookChangeIn)
@blp.response(200, WebhookOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
@blp.alt_response(422, schema=ApiError)
def change(body, sub_id: int):  # noqa: ANN001, ANN201
    """Change URL, events or description; pause ("paused") or resume ("active")."""
    return _out(subscriptions.change_subscription(db.session, g.actor, sub_id, now(), _allowed(), **body))


@blp.route("/webhooks/<id:sub_id>", methods=["DELETE"])
@blp.response(204)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
def remove(sub_id: int):  # noqa: ANN201
    """Delete the subscription, its pending events and its log."""
    subscriptions.delete_subscription(db.session, g.actor, sub_id, now())
    return ""


@blp.route("/webhooks/<id:sub_id>/rotate", methods=["POST"])
@blp.response(200, SecretOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
def rotate(sub_id: int):  # noqa: ANN201
    """A new secret; the old one keeps signing beside it for the grace period
    (TSUNAGU_WEBHOOK_ROTATION_GRACE_HOURS, 24 by default)."""
    grace = timedelta(hours=engine_env().settings.webhook_rotation_grace_hours)
    sub, secret = subscriptions.rotate_secret(db.session, g.actor, sub_id, now(), grace)
    return {"id": sub.id, "secret": secret, "previous_secret_valid_until": sub.previous_valid_until}


@blp.route("/webhooks/<id:sub_id>/ping", methods=["POST"])
@blp.response(202, DeliveryOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
@blp.alt_response(409, schema=ApiError, description="the subscription is paused or disabled")
def ping(sub_id: int):  # noqa: ANN201
    """Queue a webhook.ping for this subscription; the delivery sweep sends it like any event."""
    return _delivery_out(subscriptions.ping(db.session, g.actor, sub_id, now()))


@blp.route("/webhooks/<id:sub_id>/deliveries")
@blp.arguments(LogQuery, location="query")
@blp.response(200, AttemptOut(many=True))
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
def deliveries(query, sub_id: int):  # noqa: ANN001, ANN201
    """The delivery log, oldest attempt first: each attempt's time, HTTP status, latency and error."""
    rows = subscriptions.attempts(db.session, g.actor, sub_id, query["limit"], query["offset"])
    out = []
    for a in rows:
        item = {"event_id": a.event_id, "type": a.kind, "attempt": a.attempt, "status": a.status_code, "at": a.at,
                "latency_ms": a.latency_ms}
        if a.error:
            item["error"] = a.error
        out.append(item)
    return out


@blp.route("/webhooks/<id:sub_id>/events")
@blp.arguments(EventsQuery, location="query")
@blp.response(200, DeliveryOut(many=True))
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
@blp.alt_response(422, schema=ApiError)
def events(query, sub_id: int):  # noqa: ANN001, ANN201
    """The subscription's events, newest first, with where each stands (?status=dead: those to re-send)."""
    rows = subscriptions.deliveries(db.session, g.actor, sub_id, query["status"], query["limit"])
    return [_delivery_out(d) for d in rows]


@blp.route("/webhooks/<id:sub_id>/deliveries/<id:event_id>/resend", methods=["POST"])
@blp.response(202, DeliveryOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
@blp.alt_response(409, schema=ApiError)
def resend(sub_id: int, event_id: int):  # noqa: ANN201
    """Send a dead (or delivered) event again, from the start of the retry schedule."""
    return _delivery_out(subscriptions.resend(db.session, g.actor, sub_id, event_id, now()))
