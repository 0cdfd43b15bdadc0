"""POST /webhooks/<source>: signed messages from registered sources (no bearer token).

The request is checked before anything is read from its body: an unknown source, a
missing or wrong signature and a timestamp more than 5 minutes off all get the same 401
(an unknown source is not told apart from a bad signature); a webhook-id already received
from that source gets 409. Then the body `{"type", "data", "correlation"?}` is routed by
`engine.casework.cases.receive_message`: 202 `{"case_id"}`, 400 malformed, 404 `no_match`. Errors use
the API's envelope.
"""

from __future__ import annotations

import json

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException

from engine.casework import cases
from engine.security import sources
from engine.workflow.limits import MAX_BODY_DEPTH, json_text_depth_exceeds, unstorable_at
from web.api import error_response
from web.api.blueprint import TOO_DEEP
from web.extensions import db, engine_env, now
from webhooks.inbound import VerificationFailed, verify

bp = Blueprint("inbound_webhooks", __name__)
FIELDS = {"type", "data", "correlation"}
UNAUTHORIZED = "署名を確認できません / The message's signature, timestamp or source is not valid"


def _unauthorized():  # noqa: ANN202
    response = error_response(401, UNAUTHORIZED)
    del response.headers["WWW-Authenticate"]  # not a bearer-token endpoint
    return response


@bp.route("/webhooks/<source>", methods=["POST"])
def receive(source: str):  # noqa: ANN201
    body = request.get_data(cache=False)
    src = sources.active_source(db.session, source)
    if src is None:
        return _unauthorized()
    try:
        verified = verify(src.secret, body, request.headers, now())
    except VerificationFailed:
        return _unauthorized()
    # Python's parser recurses: nesting deeper than the limit is refused before parsing, as in the API.
    if json_text_depth_exceeds(body):
        return error_response(400, f"JSON の入れ子が深すぎます（{MAX_BODY_DEPTH} 段まで）/ The body is {TOO_DEEP}",
                              {"body": TOO_DEEP})
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return error_response(400, "本文が JSON ではありません / The body is not valid JSON", {"body": "not JSON"})
    fault = unstorable_at(message)
    if fault:  # PostgreSQL cannot store it; refused on every database alike
        field, what = fault
        return error_response(400, f"{field} は保存できない値です / {field} {what}", {field: what})
    if not isinstance(message, dict):
        return error_response(400, "本文は JSON オブジェクトです / The body must be a JSON object",
                              {"body": "must be an object"})
    unknown = sorted(set(message) - FIELDS)
    if unknown:
        return error_response(400, f"不明な項目 {', '.join(unknown)} / Unknown fields: {', '.join(unknown)}",
                              dict.fromkeys(unknown, "unknown field"))
    if "type" not in message:
        return error_response(400, "type（メッセージ名）は必須です / type (the message name) is required",
                              {"type": "required"})
    case = cases.receive_message(db.session, engine_env(), None, message["type"], message.get("data"),
                                 message.get("correlation"), now(), source_name=src.name,
                                 webhook_id=verified.webhook_id)
    return jsonify({"case_id": case.id}), 202


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):  # noqa: ANN202
    # e.g. 413 for a body over the server's limit: in the same envelope as every other answer here.
    return error_response(error.code or 400, error.description or error.name)


def init_app(app) -> None:  # noqa: ANN001
    app.register_blueprint(bp)
