"""The JSON API under /api: authentication, error format, and its blueprints."""

from __future__ import annotations

import contextlib
import http
from typing import Any

from apispec import BasePlugin
from flask import Flask, current_app, jsonify, request
from flask_smorest import Api
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from engine.errors import DomainError
from web.api.schemas import ApiError
from web.converters import IdConverter, id_param_schema
from web.extensions import PAGE_ERRORS, db

CODES = {400: "malformed", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         409: "conflict", 413: "too_large", 415: "malformed", 422: "invalid", 429: "too_many_requests",
         503: "unavailable"}

DB_UNAVAILABLE_MESSAGE = ("データベースに接続できません。しばらくしてから再度お試しください / "
                          "The database is unavailable; try again shortly")
RETRY_AFTER_SECONDS = 5


def error_response(status: int, message: str, fields: dict[str, Any] | None = None, code: str | None = None):  # noqa: ANN201
    body: dict[str, Any] = {"code": code or CODES.get(status, "error"), "message": message}
    if fields:
        body["fields"] = fields
    response = jsonify({"error": body})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="tsunagu"'
    return response


def _flatten(errors: Any, prefix: str = "") -> dict[str, str]:
    """webargs/marshmallow errors {"json": {"data": ["Not a valid mapping."]}} → {"data": "..."}."""
    out: dict[str, str] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            if key in ("json", "query", "form", "files") and not prefix:
                out.update(_flatten(value))
            else:
                out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(errors, list):
        if all(isinstance(e, str) for e in errors):
            out[prefix or "data"] = " ".join(errors)
        else:
            for i, e in enumerate(errors):
                out.update(_flatten(e, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out[prefix or "data"] = str(errors)
    return out


# Headers error answers carry, documented where those answers are.
ERROR_HEADERS = {
    401: {"WWW-Authenticate": {"description": "Bearer realm=\"tsunagu\"", "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}},
}


class ErrorResponses(BasePlugin):
    """Documents on every operation the errors any API call can answer, so that a new endpoint
    gets them without anyone remembering: 401 (no or a bad token) and 503 (database unavailable)
    everywhere; 400 (unreadable JSON), 413 (body too large) and 422 where a body is read; 422
    where query parameters are read; 404 where the path names something, and 422 where it
    names it by a bounded integer. Errors only some operations send (403, 409) are declared on
    those views."""

    def __init__(self) -> None:
        self._path_parameters: list[dict] = []

    def path_helper(self, path: str | None = None, operations: dict | None = None,
                    parameters: list[dict] | None = None, **kwargs: Any) -> None:
        # Called just before operation_helper for the same path: its parameters are the path's.
        self._path_parameters = [p for p in parameters or [] if isinstance(p, dict) and p.get("in") == "path"]

    def operation_helper(self, path: str | None = None, operations: dict | None = None, **kwargs: Any) -> None:
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            statuses = {401, 503}
            if "requestBody" in operation:
                statuses |= {400, 413, 422}
            if operation.get("parameters"):
                statuses.add(422)
            if self._path_parameters:
                statuses.add(404)
            if any(p.get("schema", {}).get("type") == "integer" for p in self._path_parameters):
                statuses.add(422)
            have = {str(code) for code in responses}
            for status in sorted(statuses):
                if str(status) in have:
                    continue
                if status in ERROR_HEADERS:
                    responses[status] = {"description": http.HTTPStatus(status).phrase,
                                         "content": {"application/json": {"schema": "ApiError"}},
                                         "headers": ERROR_HEADERS[status]}
                else:  # flask-smorest's component for the status, whose schema is ERROR_SCHEMA
                    responses[status] = http.HTTPStatus(status).name


class TsunaguApi(Api):
    # Every documented error (each status's component, `default`, webargs' 422) is the
    # envelope the API sends: {"error": {"code", "message", "fields"?}}.
    ERROR_SCHEMA = ApiError

    def handle_http_exception(self, error: HTTPException):  # noqa: ANN201
        if not request.path.startswith("/api"):
            # outside the API (an unknown address, a wrong method): the staff pages' error page, or
            # Werkzeug's own when the pages are not installed
            pages = current_app.extensions.get(PAGE_ERRORS)
            return pages(error) if pages else error
        data = getattr(error, "data", None) or {}
        fields = _flatten(data.get("messages") or data.get("errors") or {})
        status = error.code or 500
        if status == 400 and "Invalid JSON" in str(data.get("messages", "")) or status == 400 and not fields:
            return error_response(400, "リクエストの JSON が読めません / The request body is not valid JSON")
        if status == 422:
            names = ", ".join(sorted(fields))
            return error_response(422, f"入力内容に誤りがあります / Invalid fields: {names}", fields)
        message = data.get("message") or error.description or error.name
        response = error_response(status, message, fields or None)
        for name, value in error.get_headers():
            if name == "Allow":  # 405: the methods the URL does accept
                response.headers[name] = value
        return response


def init_app(app: Flask) -> None:
    api = TsunaguApi(app, spec_kwargs={
        "info": {"description": "Tsunagu: multi-agency welfare support as BPMN"},
        # Every operation needs a Bearer token; only GET /api/openapi.json (not an operation
        # of the document) is open.
        "security": [{"bearer": []}],
        "extra_plugins": [ErrorResponses()],
    })
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    api.register_converter(IdConverter, id_param_schema)

    from web.api import (
        admin,
        casefile,
        cases,
        drafts,
        groups,
        messages,
        processes,
        reports,
        roles,
        scheme,
        supervise,
        tasks,
        webhooks,
    )

    # casefile first among them: its app-wide hook sets the upload's size limit before anything
    # reads a request body (web.create_app's NUL check reads every form).
    for blp in (casefile.blp, groups.blp, cases.blp, tasks.blp, admin.blp, webhooks.blp, messages.blp, scheme.blp, processes.blp,
                drafts.blp, reports.blp, supervise.blp, roles.blp):
        api.register_blueprint(blp)

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):  # noqa: ANN202
        db.session.rollback()
        return error_response(exc.status, exc.message, exc.fields, exc.code)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _database_unavailable(exc: DBAPIError):  # noqa: ANN202
        """The database is down, unreachable or locked for longer than the busy timeout. The
        transaction is rolled back, so nothing of the request is kept; the pool reconnects by
        itself (pre-ping) once the database is back."""
        with contextlib.suppress(DBAPIError):  # the connection is gone; its transaction went with it
            db.session.rollback()
        if getattr(exc.orig, "sqlstate", None) in ("40001", "40P01"):  # serialization failure, deadlock
            return error_response(409, "他の操作と競合しました。もう一度お試しください / "
                                       "The change collided with another one; try again")
        current_app.logger.warning("database unavailable: %s", (str(exc.orig or exc).splitlines() or ["?"])[0])
        if request.path.startswith("/api"):
            response = error_response(503, DB_UNAVAILABLE_MESSAGE)
        else:
            response = current_app.response_class(DB_UNAVAILABLE_MESSAGE, 503, mimetype="text/plain")
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
