"""The process designers' page (/modeler, roles designer and admin) and the JSON it reads and
writes under /modeler/data, signed in with the page session and the CSRF header like every page
(the JSON API itself takes Bearer tokens only).

The page draws everything in the browser (web/assets/modeler.js: bpmn-js, dmn-js, bpmnlint); each
data view here parses the request, calls one domain function (engine.workflow.drafts, engine.workflow.sandbox,
engine.workflow.forms) and answers JSON, with the API's error envelope. The form preview is drawn by the
task page's own renderer (web/ui/forms.py, templates/ui/_form.html).
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Response, g, jsonify, render_template, request, url_for

from engine.errors import DomainError, Invalid
from engine.security.access import require_designer
from engine.workflow import drafts, form_store, sandbox, versions
from engine.workflow import forms as form_rules
from engine.workflow.limits import MAX_INT
from web.api import error_response
from web.extensions import db, engine_env, now
from web.ui import csrf, errors, forms
from web.ui.auth import load_actor, login_required
from web.ui.i18n import group_name, lang, message_keys, t

bp = Blueprint("ui_modeler", __name__, url_prefix="/modeler")
bp.before_request(load_actor)
bp.before_request(csrf.protect)
errors.install(bp)

data = Blueprint("ui_modeler_data", __name__, url_prefix="/modeler/data")
data.before_request(load_actor)
data.before_request(csrf.protect)


DECISION_ID = re.compile(r"<(?:\w+:)?decision\b[^>]*\bid=\"([^\"]+)\"")
# The texts modeler.js shows, by key, handed to it in the page's language.
def browser_texts() -> list[str]:
    return [k for k in message_keys() if k.startswith("md_")]


def _designer() -> Any:
    require_designer(g.actor)
    return g.actor


@bp.route("")
@login_required
def page() -> Any:
    actor = _designer()
    env = engine_env()
    known_dmn, known_forms = drafts.known_parts(db.session, env.settings)
    groups = {info.id: info for info in env.org.groups}
    lanes = [{"lane": lane, "group": target,
              "group_name": t("md_referring") if target.startswith("$") else group_name(groups[target])}
             for lane, target in env.org.lanes.items()]
    decisions = sorted({d for xml in known_dmn.values() for d in DECISION_ID.findall(xml)})
    payload = {
        "lang": lang(),
        "csrf": csrf.token(),
        "processes": _catalogue(actor),
        "forms": {key: {"schema": schema} for key, schema in sorted(known_forms.items())},
        "lanes": lanes,
        "decisions": decisions,
        "messages": {k: t(k) for k in browser_texts()},
        "urls": {
            "processes": url_for("ui_modeler_data.processes"),
            "bpmn": "/modeler/data/processes/{key}/versions/{version}/bpmn",
            "dmn": "/modeler/data/processes/{key}/versions/{version}/dmn/{name}",
            "draft": "/modeler/data/processes/{key}/draft",
            "validate": url_for("ui_modeler_data.validate"),
            "testRun": url_for("ui_modeler_data.test_run"),
            "deploy": url_for("ui_modeler_data.deploy"),
            "preview": url_for("ui_modeler_data.form_preview"),
            "form": "/modeler/data/forms/{key}",
            "migration": "/modeler/data/processes/{key}/migration",
        },
    }
    # `</` cannot end the data island early: JSON allows the slash to be escaped.
    island = json.dumps(payload, ensure_ascii=False, default=str).replace("</", "<\\/")
    return render_template("ui/modeler.html", island=island, active="modeler")


def _catalogue(actor: Any) -> list[dict[str, Any]]:
    return [{**p, "versions": [{**v, "created_at": v["created_at"].isoformat()} for v in p["versions"]]}
            for p in drafts.catalogue(db.session, actor)]


# ---------------------------------------------------------------- JSON for the page


@data.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> Response:
    db.session.rollback()
    return error_response(exc.status, exc.message, exc.fields, exc.code)


@data.before_request
def _signed_in() -> Any:
    if g.get("actor") is None:
        return error_response(401, "サインインしてください / Sign in first")
    return None


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("JSON オブジェクトを送ってください / Send a JSON object", {"body": "not a JSON object"})
    return body


def _xml(text: str, name: str) -> Response:
    response = Response(text, mimetype="application/xml")
    if request.args.get("download") == "1":
        response.headers["Content-Disposition"] = f"attachment; filename=\"{name}\""
    return response


@data.route("/processes")
def processes() -> Any:
    return jsonify(_catalogue(g.actor))


@data.route("/processes/<process_key>/versions/<id:number>/bpmn")
def version_bpmn(process_key: str, number: int) -> Response:
    row = drafts.version(db.session, g.actor, process_key, number)
    return _xml(next(iter(row.bundle["bpmn"].values())), f"{process_key}-v{number}.bpmn")


@data.route("/processes/<process_key>/versions/<id:number>/dmn/<name>")
def version_dmn(process_key: str, number: int, name: str) -> Response:
    row = drafts.version(db.session, g.actor, process_key, number)
    text = row.bundle.get("dmn", {}).get(name)
    if text is None:
        return error_response(404, f"版 {number} に {name} はありません / Version {number} has no {name}")
    return _xml(text, name)


@data.route("/processes/<process_key>/draft", methods=["GET"])
def get_draft(process_key: str) -> Any:
    row = drafts.get_draft(db.session, g.actor, process_key)
    return jsonify({"process_key": row.process_key, "bpmn": row.bpmn, "dmn": row.dmn,
                    "base_version": row.base_version, "updated_at": row.updated_at.isoformat()})


@data.route("/processes/<process_key>/draft", methods=["PUT"])
def put_draft(process_key: str) -> Any:
    body = _body()
    row = drafts.save_draft(db.session, g.actor, process_key, body.get("bpmn"), body.get("dmn"),
                            body.get("base_version"), now())
    return jsonify({"process_key": row.process_key, "base_version": row.base_version,
                    "updated_at": row.updated_at.isoformat()})


@data.route("/processes/<process_key>/draft", methods=["DELETE"])
def delete_draft(process_key: str) -> Any:
    drafts.delete_draft(db.session, g.actor, process_key)
    return "", 204


def _forms(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    value = body.get("forms") or {}
    if not isinstance(value, dict):
        raise Invalid("forms はキーから JSON Schema への対応です / forms must be {key: JSON Schema}", {"forms": "not an object"})
    for key, schema in value.items():
        problems = form_rules.check_schema(schema)
        if problems:
            raise Invalid(f"フォーム {key} の JSON Schema に誤りがあります / The JSON Schema of form {key} is not valid",
                          {f"forms.{key}.{path}": what for path, what in problems.items()})
    return value


@data.route("/validate", methods=["POST"])
def validate() -> Any:
    body = _body()
    return jsonify(drafts.validate_draft(db.session, engine_env(), g.actor, body.get("bpmn"), body.get("dmn"),
                                         _forms(body)))


@data.route("/test-run", methods=["POST"])
def test_run() -> Any:
    body = _body()
    result = sandbox.run_draft(db.session, engine_env(), g.actor, body.get("bpmn"), body.get("answers"), now(),
                               body.get("dmn"), _forms(body))
    return jsonify(result.as_dict())


@data.route("/deploy", methods=["POST"])
def deploy() -> Any:
    body = _body()
    opened = body.get("opened")
    result = drafts.deploy_draft(db.session, engine_env(), g.actor, body.get("bpmn"), body.get("dmn"),
                                 opened if isinstance(opened, str) else None, body.get("overwrite") is True, now(),
                                 _forms(body), body.get("comment"))
    return jsonify({"process_key": result.process_key, "version": result.version, "created": result.created})


@data.route("/forms/preview", methods=["POST"])
def form_preview() -> Any:
    _designer()
    schema = _body().get("schema")
    problems = form_rules.check_schema(schema)
    if problems:
        raise Invalid("JSON Schema に誤りがあります / The JSON Schema is not valid",
                      {"schema" if path == "schema" else f"schema.{path}": what for path, what in problems.items()})
    groups = list(engine_env().org.groups)
    fields = forms.build(schema, {}, {}, groups)
    return jsonify({"html": render_template("ui/_form_preview.html", fields=fields)})


@data.route("/forms/<key>", methods=["PUT"])
def save_form(key: str) -> Any:
    row, created = form_store.put_form(db.session, g.actor, key, _body().get("schema"), now())
    return jsonify({"key": row.form_key, "version": row.version, "created": created})


def _version_arg(name: str) -> int:
    raw = request.args.get(name, "")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_INT:
        raise Invalid(f"{name} は版番号です / {name} must be a version number", {name: "a version number"})
    return int(raw)


@data.route("/processes/<process_key>/migration", methods=["GET"])
def migration_preview(process_key: str) -> Any:
    movable, blocked = versions.preview(db.session, engine_env(), g.actor, process_key, _version_arg("from"),
                                        _version_arg("to"))
    return jsonify({"movable": movable, "blocked": blocked})


@data.route("/processes/<process_key>/migration", methods=["POST"])
def migrate(process_key: str) -> Any:
    body = _body()
    result = versions.migrate(db.session, engine_env(), g.actor, process_key, body.get("from"), body.get("to"),
                              body.get("cases"), now())
    return jsonify({"migrated": result.migrated, "failed": result.failed})
