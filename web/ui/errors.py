"""Error pages of the staff pages: a 404 that never tells whether a case exists, and plain
Japanese (or English) messages for conflicts and refusals."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from werkzeug.exceptions import HTTPException

from engine.errors import DomainError
from web.extensions import db
from web.ui.i18n import t


def error_message(exc: DomainError) -> str:
    """A domain error in the page's language: our wording for the usual codes."""
    if exc.code in ("conflict", "forbidden", "workflow_error", "invalid"):
        return t(exc.code)
    return exc.message


def _page(status: int, title: str, body: str) -> tuple[str, int]:
    return render_template("ui/error.html", status=status, title=title, body=body), status


def domain_error(exc: DomainError) -> tuple[str, int]:
    db.session.rollback()
    if exc.status == 404:
        return _page(404, t("not_found_title"), t("not_found_body"))
    return _page(exc.status, t("error_title"), error_message(exc))


def http_error(exc: HTTPException) -> Any:
    if exc.code == 404:
        return _page(404, t("not_found_title"), t("not_found_body"))
    if exc.code == 400:
        return _page(400, t("bad_request_title"), t("csrf_failed") if exc.description == "csrf" else
                     t("bad_request_title"))
    return exc


def install(bp: Blueprint) -> None:
    bp.register_error_handler(DomainError, domain_error)
    bp.register_error_handler(HTTPException, http_error)
