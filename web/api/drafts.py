"""Process design: a designer's draft of a process (GET/PUT/DELETE /api/processes/<key>/draft) and
test runs of a draft in a sandbox (POST /api/processes/test-run). Designers and administrators only."""

from __future__ import annotations

from flask import g

from engine.workflow import drafts, sandbox
from web.api.auth import authenticate
from web.api.blueprint import Blueprint
from web.api.schemas import ApiError, ProcessDraftIn, ProcessDraftOut, SandboxRunIn, SandboxRunOut
from web.extensions import db, engine_env, now

blp = Blueprint("process_drafts", __name__, url_prefix="/api/processes",
                description="Process design: drafts and test runs (設計)")
blp.before_request(authenticate)


def _draft(row) -> dict:  # noqa: ANN001
    return {"process_key": row.process_key, "bpmn": row.bpmn, "dmn": row.dmn, "base_version": row.base_version,
            "updated_at": row.updated_at}


@blp.route("/<process_key>/draft")
@blp.response(200, ProcessDraftOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(422, schema=ApiError, description="the process id is not one (letters, digits, _ . -)")
def get_draft(process_key: str):  # noqa: ANN201
    """The caller's draft of a process."""
    return _draft(drafts.get_draft(db.session, g.actor, process_key))


@blp.route("/<process_key>/draft", methods=["PUT"])
@blp.arguments(ProcessDraftIn)
@blp.response(200, ProcessDraftOut)
@blp.alt_response(403, schema=ApiError)
def put_draft(body, process_key: str):  # noqa: ANN001, ANN201
    """Save the caller's draft of a process (replacing the one before). Checked only for being
    BPMN/DMN XML: validate or test-run it to see what deploying it would say."""
    return _draft(drafts.save_draft(db.session, g.actor, process_key, body["bpmn"], body["dmn"],
                                    body["base_version"], now()))


@blp.route("/<process_key>/draft", methods=["DELETE"])
@blp.response(204)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(422, schema=ApiError, description="the process id is not one (letters, digits, _ . -)")
def delete_draft(process_key: str):  # noqa: ANN201
    """Throw the caller's draft of a process away."""
    drafts.delete_draft(db.session, g.actor, process_key)


@blp.route("/test-run", methods=["POST"])
@blp.arguments(SandboxRunIn)
@blp.response(200, SandboxRunOut)
@blp.alt_response(403, schema=ApiError)
def run_test(body):  # noqa: ANN001, ANN201
    """Run a draft in memory with sample answers per step id, touching no case: the path it took,
    where it stopped, and any error with its element. A draft that deploying would refuse (unsafe
    code, a missing form, an unknown lane) answers 422 with `fields` keyed by the element."""
    return sandbox.run_draft(db.session, engine_env(), g.actor, body["bpmn"], body["answers"], now(), body["dmn"],
                             body["forms"]).as_dict()
