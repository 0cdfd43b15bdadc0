"""Messages sent by staff tools (POST /api/messages/<name>) and the registered message sources."""

from __future__ import annotations

from flask import g
from marshmallow import Schema, fields

from engine.casework import cases
from engine.security import sources
from web.api.auth import authenticate
from web.api.blueprint import Blueprint
from web.api.schemas import ApiError
from web.extensions import db, engine_env, now

blp = Blueprint("messages", __name__, url_prefix="/api", description="Incoming messages and their sources")
blp.before_request(authenticate)


class MessageIn(Schema):
    # Raw: the engine checks both and answers 400 naming the field, as for webhooks.
    data = fields.Raw(load_default=None, metadata={"description": "becomes the case's (or the waiting step's) data"})
    correlation = fields.Raw(load_default=None, metadata={
        "description": "{property: value} naming the waiting case, e.g. {\"household_ref\": \"H-123\"}"})


class MessageOut(Schema):
    case_id = fields.String(required=True)


class SourceIn(Schema):
    name = fields.String(required=True, metadata={"description": "a-z, 0-9, - and _ (POST /webhooks/<name>)"})
    process = fields.String(load_default=None, allow_none=True,
                            metadata={"description": "messages may only start or move cases of this process"})
    group = fields.String(load_default=None, allow_none=True,
                          metadata={"description": "referring group of cases it starts (default: secretariat)"})


class SourceOut(Schema):
    name = fields.String(required=True)
    process = fields.String(allow_none=True)
    group = fields.String()
    active = fields.Boolean()
    created_at = fields.DateTime()
    url = fields.String(metadata={"description": "where the source posts its messages"})


class SourceCreated(SourceOut):
    secret = fields.String(metadata={"description": "Standard Webhooks secret (whsec_…); shown only now"})


def source_out(s) -> dict:  # noqa: ANN001
    return {"name": s.name, "process": s.process_key, "group": s.group_id, "active": s.active,
            "created_at": s.created_at, "url": f"/webhooks/{s.name}"}


@blp.route("/messages/<name>", methods=["POST"])
@blp.arguments(MessageIn)
@blp.response(202, MessageOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(400, schema=ApiError)
@blp.alt_response(404, schema=ApiError, description="no_match: no case waits for it and no process starts with it")
@blp.alt_response(409, schema=ApiError, description="several cases or processes would take it")
def send_message(body, name: str):  # noqa: ANN001, ANN201
    """Send a message as a staff tool (secretariat, administrators): a waiting case receives it
    by its correlation, or a process with a message start event of that name starts a case."""
    case = cases.receive_message(db.session, engine_env(), g.actor, name, body["data"], body["correlation"], now())
    return {"case_id": case.id}


@blp.route("/sources", methods=["GET"])
@blp.response(200, SourceOut(many=True))
@blp.alt_response(403, schema=ApiError)
def list_sources():  # noqa: ANN201
    """Registered message sources (administrators); their secrets are never shown again."""
    return [source_out(s) for s in sources.list_sources(db.session, g.actor)]


@blp.route("/sources", methods=["POST"])
@blp.arguments(SourceIn)
@blp.response(201, SourceCreated)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(409, schema=ApiError)
def add_source(body):  # noqa: ANN001, ANN201
    """Register a message source (administrators); the answer carries its secret, once."""
    s = sources.add_source(db.session, engine_env(), g.actor, body["name"], now(), body["process"], body["group"])
    return {**source_out(s), "secret": s.secret}


@blp.route("/sources/<name>", methods=["DELETE"])
@blp.response(200, SourceOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
def remove_source(name: str):  # noqa: ANN201
    """Remove a message source (administrators): its messages are refused from now on."""
    return source_out(sources.remove_source(db.session, g.actor, name, now()))
