"""CSRF protection of the staff pages' forms (the JSON API, authenticated by Bearer tokens and
never by cookies, needs none).

One random token per page session, kept in its row on the server (web/ui/session.py); every POST of a
staff page must send it back in the form field `csrf_token` (or the `X-CSRF-Token` header).
A POST without it, or with another, is refused with 400 before the view runs.
"""

from __future__ import annotations

import hmac
import secrets

from flask import abort, request, session

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def token() -> str:
    """The session's token (made on first use); templates put it in every form."""
    value = session.get(FIELD)
    if not isinstance(value, str) or len(value) < 32:
        value = secrets.token_urlsafe(32)
        session[FIELD] = value
    return value


def protect() -> None:
    """before_request of the page blueprints."""
    if request.method in SAFE_METHODS:
        return
    expected = session.get(FIELD)
    sent = request.form.get(FIELD) or request.headers.get(HEADER) or ""
    if not isinstance(expected, str) or not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        abort(400, description="csrf")
