"""Bearer-token authentication for the API blueprints."""

from __future__ import annotations

from typing import Any

from flask import g, request

from engine.security.users import user_for_token
from web.api import error_response
from web.extensions import db, now


def authenticate() -> Any:
    """before_request of every API blueprint: sets g.actor or answers 401."""
    if request.method == "OPTIONS":
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return error_response(401, "認証が必要です / Authorization: Bearer <token> is required")
    user = user_for_token(db.session, token.strip(), now())
    if user is None:
        return error_response(401, "トークンが無効です / The token is unknown or revoked")
    g.actor = user
    return None
