"""Process designers' API: versions, a version's BPMN and DMN, validate, deploy, diff, migration of
running cases between versions, and forms. Role designer or admin; others get 403."""

from __future__ import annotations

from flask import g, request
from marshmallow import Schema, fields, validate

from engine.workflow import form_store, versions
from engine.workflow.limits import MAX_INT
from web.api.auth import authenticate
from web.api.blueprint import Blueprint
from web.api.schemas import ApiError
from web.extensions import db, engine_env, now

blp = Blueprint("processes", __name__, url_prefix="/api", description="Process definitions, versions and forms "
                                                                      "(プロセス設計)")
blp.before_request(authenticate)

XML_BODY = {"required": True, "content": {"application/xml": {"schema": {"type": "string"},
                                                               "example": "<bpmn:definitions ...>"}}}
XML_RESPONSE = {"content": {"application/xml": {"schema": {"type": "string"}}}}
VERSION = validate.Range(1, MAX_INT)


class VersionOut(Schema):
    version = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    author = fields.String(allow_none=True, metadata={"description": "user name, OS user (tsunagu deploy) or "
                                                                     "'tsunagu init'"})
    comment = fields.String(allow_none=True)


class ProcessOut(Schema):
    key = fields.String(required=True, metadata={"description": "the BPMN process id"})
    name = fields.String(required=True)
    latest_version = fields.Integer(required=True)
    versions = fields.List(fields.Nested(VersionOut), required=True)


class ProblemOut(Schema):
    element = fields.String(allow_none=True, metadata={"description": "BPMN element id (or file); null for the "
                                                                      "whole diagram"})
    message = fields.String(required=True)


class ValidationOut(Schema):
    errors = fields.List(fields.Nested(ProblemOut), required=True, metadata={
        "description": "refuse a deployment: the engine's checks and bpmnlint errors"})
    warnings = fields.List(fields.Nested(ProblemOut), required=True, metadata={
        "description": "bpmnlint warnings, or why the diagram could not be linted"})


class DeployQuery(Schema):
    comment = fields.String(load_default=None, validate=validate.Length(max=versions.MAX_COMMENT))


class DeployOut(Schema):
    key = fields.String(required=True)
    version = fields.Integer(required=True)
    created = fields.Boolean(metadata={"description": "false when the same content was deployed before (that "
                                                      "version is answered)"})


class PairQuery(Schema):
    from_ = fields.Integer(required=True, data_key="from", validate=VERSION)
    to = fields.Integer(required=True, validate=VERSION)


class DiffOut(Schema):
    added = fields.List(fields.String(), required=True, metadata={"description": "element ids"})
    removed = fields.List(fields.String(), required=True)
    changed = fields.List(fields.String(), required=True)


class CaseRef(Schema):
    case_id = fields.String(required=True)
    number = fields.String()


class BlockedCase(CaseRef):
    reason = fields.String(required=True)


class MigrationPreviewOut(Schema):
    movable = fields.List(fields.Nested(CaseRef), required=True)
    blocked = fields.List(fields.Nested(BlockedCase), required=True)


class MigrationIn(Schema):
    from_ = fields.Integer(required=True, data_key="from", validate=VERSION)
    to = fields.Integer(required=True, validate=VERSION)
    cases = fields.List(fields.String(), load_default=None, validate=validate.Length(max=10000), metadata={
        "description": "case ids; default: every movable case of version `from`"})


class MigratedCase(Schema):
    case_id = fields.String(required=True)


class FailedCase(Schema):
    case_id = fields.String(required=True)
    reason = fields.String(required=True)


class MigrationOut(Schema):
    migrated = fields.List(fields.Nested(MigratedCase), required=True)
    failed = fields.List(fields.Nested(FailedCase), required=True)


class FormOut(Schema):
    key = fields.String(required=True)
    title = fields.String(allow_none=True)
    version = fields.Integer(required=True)
    updated_at = fields.DateTime(required=True)
    updated_by = fields.String(allow_none=True)


def _problems(items: list) -> list[dict]:
    return [{"element": p.element, "message": p.message} for p in items]


@blp.route("/processes", methods=["GET"])
@blp.response(200, ProcessOut(many=True))
@blp.alt_response(403, schema=ApiError)
def list_processes():  # noqa: ANN201
    """Every process with its versions, oldest first."""
    return versions.list_processes(db.session, g.actor)


@blp.route("/processes/<key>/versions/<id:version>/bpmn", methods=["GET"])
@blp.response(200, description="the version's BPMN XML", content_type="application/xml")
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
def version_bpmn(key: str, version: int):  # noqa: ANN201
    """The BPMN XML of one version."""
    row = versions.get_version(db.session, g.actor, key, version)
    return _xml(versions.bpmn_of(row))


@blp.route("/processes/<key>/versions/<id:version>/dmn/<name>", methods=["GET"])
@blp.response(200, description="the DMN XML", content_type="application/xml")
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
def version_dmn(key: str, version: int, name: str):  # noqa: ANN201
    """A DMN file of one version (`intake_criteria.dmn`, or without `.dmn`)."""
    row = versions.get_version(db.session, g.actor, key, version)
    return _xml(versions.dmn_of(row, name))


def _xml(text: str):  # noqa: ANN202
    from flask import current_app

    return current_app.response_class(text, 200, mimetype="application/xml")


@blp.route("/processes/validate", methods=["POST"])
@blp.doc(requestBody=XML_BODY)
@blp.response(200, ValidationOut)
@blp.alt_response(403, schema=ApiError)
def validate_diagram():  # noqa: ANN201
    """Check a diagram as a deployment would (with the DMN currently deployed and the forms
    currently stored), and lint it with bpmnlint; nothing is stored."""
    errors, warnings = versions.validate(db.session, engine_env(), g.actor, request.get_data())
    return {"errors": _problems(errors), "warnings": _problems(warnings)}


@blp.route("/processes", methods=["POST"])
@blp.arguments(DeployQuery, location="query")
@blp.doc(requestBody=XML_BODY)
@blp.response(201, DeployOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(422, schema=ApiError, description="refused: `fields` maps each element id to its problem; "
                                                    "nothing was deployed")
def deploy(query):  # noqa: ANN001, ANN201
    """Deploy a diagram as the next version of the process it names (its first, if several)."""
    result = versions.deploy_diagram(db.session, engine_env(), g.actor, request.get_data(), query["comment"], now())
    return {"key": result.process_key, "version": result.version, "created": result.created}


@blp.route("/processes/<key>/diff", methods=["GET"])
@blp.arguments(PairQuery, location="query")
@blp.response(200, DiffOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
def diff(query, key: str):  # noqa: ANN001, ANN201
    """Elements added, removed and changed from version `from` to version `to` (SpiffWorkflow's SpecDiff)."""
    return versions.diff(db.session, engine_env(), g.actor, key, query["from_"], query["to"])


@blp.route("/processes/<key>/migration", methods=["GET"])
@blp.arguments(PairQuery, location="query")
@blp.response(200, MigrationPreviewOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
def migration_preview(query, key: str):  # noqa: ANN001, ANN201
    """Which running cases of version `from` could move to version `to`, and why the others cannot."""
    movable, blocked = versions.preview(db.session, engine_env(), g.actor, key, query["from_"], query["to"])
    return {"movable": movable, "blocked": blocked}


@blp.route("/processes/<key>/migration", methods=["POST"])
@blp.arguments(MigrationIn)
@blp.response(200, MigrationOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
def migrate(body, key: str):  # noqa: ANN001, ANN201
    """Move cases of version `from` to version `to`, each in its own transaction: a result per case."""
    result = versions.migrate(db.session, engine_env(), g.actor, key, body["from_"], body["to"], body["cases"],
                              now())
    return {"migrated": result.migrated, "failed": result.failed}


def _form(row) -> dict:  # noqa: ANN001
    title = row.schema.get("title") if isinstance(row.schema.get("title"), str) else None
    return {"key": row.form_key, "title": title, "version": row.version, "updated_at": row.created_at,
            "updated_by": row.created_by}


@blp.route("/forms", methods=["GET"])
@blp.response(200, FormOut(many=True))
@blp.alt_response(403, schema=ApiError)
def list_forms():  # noqa: ANN201
    """Every stored form (its newest version)."""
    return [_form(row) for row in form_store.list_forms(db.session, g.actor)]


@blp.route("/forms/<key>", methods=["GET"])
@blp.response(200, description="the form's JSON Schema (its newest version)")
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
def get_form(key: str):  # noqa: ANN201
    """A form's JSON Schema."""
    return form_store.get_form(db.session, g.actor, key).schema


@blp.route("/forms/<key>", methods=["PUT"])
@blp.arguments(Schema.from_dict({})(unknown="include"), description="the form's JSON Schema")
@blp.response(200, FormOut)
@blp.alt_response(403, schema=ApiError)
def put_form(body, key: str):  # noqa: ANN001, ANN201
    """Create or change a form; processes use it from their next deployed version on."""
    row, _stored = form_store.put_form(db.session, g.actor, key, body, now())
    return _form(row)
