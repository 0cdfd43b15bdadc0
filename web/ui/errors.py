"""Error pages of the staff pages: a 404 that never tells whether a case exists, and plain
Japanese (or English) messages for conflicts and refusals."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, render_template
from werkzeug.exceptions import HTTPException

from engine.errors import DomainError
from web.extensions import PAGE_ERRORS, db
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


# Statuses with words of their own; any other error gets the general title and body.
BODIES = {405: "method_not_allowed", 413: "too_large"}


def http_error(exc: HTTPException) -> Any:
    """Every HTTP error of the pages (and of any address outside /api) as a page of ours, in the
    page's language, never Werkzeug's English one."""
    if exc.code == 404:
        return _page(404, t("not_found_title"), t("not_found_body"))
    if exc.code == 400:
        return _page(400, t("bad_request_title"), t("csrf_failed") if exc.description == "csrf" else
                     t("bad_request_title"))
    if exc.code is None or exc.code < 400:
        return exc  # a redirect or a response raised on purpose, not an error
    response = exc.get_response()  # keeps the headers the error needs (Allow on a 405)
    response.set_data(render_template("ui/error.html", status=exc.code, title=t("error_title"),
                                      body=t(BODIES.get(exc.code, "error_body"))))
    response.mimetype = "text/html"
    return response


def install(bp: Blueprint) -> None:
    bp.register_error_handler(DomainError, domain_error)
    bp.register_error_handler(HTTPException, http_error)


def install_app(app: Flask) -> None:
    """The error page for addresses no blueprint owns (outside /api, whose errors stay JSON)."""
    app.extensions[PAGE_ERRORS] = http_error
