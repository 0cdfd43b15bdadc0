"""Staff sign-in for the pages: user name and password (argon2, engine.users), a signed
session cookie, sign-out.

Everything about signing in lives here so that rate limiting, auditing and account
administration can be added in one place. The session cookie is HttpOnly, SameSite=Lax, and
Secure whenever the request came over HTTPS (or SESSION_COOKIE_SECURE is set); it holds the
user id, the sign-in time and the CSRF token, and nothing else of the user.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, g, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Response

from engine import users
from engine.errors import NotFound
from engine.models import User
from engine.settings import ROOT
from web.extensions import db, now
from web.ui import csrf, errors
from web.ui.i18n import t

bp = Blueprint("ui_auth", __name__)

SESSION_USER = "uid"
SESSION_SIGNED_IN = "signed_in_at"
# A sign-in lasts a working day at most, whatever the browser does with the cookie.
MAX_SESSION_AGE = timedelta(hours=12)
SECRET_FILE = ROOT / "var" / "secret_key"
# Verified when the user name is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY = User(name="", display_name="", password_hash=None)


class StaffSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, marked Secure on HTTPS requests even when not configured."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def _secret_key() -> str:
    """TSUNAGU_SECRET_KEY, else a key generated once into var/secret_key (mode 0600)."""
    env = os.environ.get("TSUNAGU_SECRET_KEY")
    if env:
        return env
    path = Path(os.environ.get("TSUNAGU_SECRET_FILE", SECRET_FILE))
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_urlsafe(48))
    try:
        os.link(tmp, path)  # atomic; another process may have been first, and then its key wins
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_text(encoding="ascii").strip()


def configure(app: Flask) -> None:
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key()
    app.config.setdefault("SESSION_COOKIE_NAME", "tsunagu_session")
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.session_interface = StaffSessionInterface()
    if _DUMMY.password_hash is None:
        users.set_password(_DUMMY, secrets.token_urlsafe(16))


def load_actor() -> None:
    """before_request of the page blueprints: g.actor is the signed-in user or None."""
    g.actor = None
    uid = session.get(SESSION_USER)
    if uid is None:
        return
    signed_in = session.get(SESSION_SIGNED_IN)
    try:
        fresh = now() - datetime.fromisoformat(signed_in) <= MAX_SESSION_AGE
    except (TypeError, ValueError):
        fresh = False
    user = db.session.get(User, uid) if isinstance(uid, int) and fresh else None
    if user is None or not user.active:
        _forget()
        return
    g.actor = user


def _forget() -> None:
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def login_required(view: Any) -> Any:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.get("actor") is None:
            if request.method == "GET":
                return redirect(url_for("ui_auth.login", next=request.full_path.rstrip("?")))
            return redirect(url_for("ui_auth.login"))
        return view(*args, **kwargs)

    return wrapper


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a path on this site: never another host (open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def authenticate(name: str, password: str) -> User | None:
    try:
        user = users.get_user(db.session, name)
    except NotFound:
        users.check_password(_DUMMY, password)
        return None
    if not users.check_password(user, password) or not user.active:
        return None
    return user


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    next_url = safe_next(request.values.get("next"))
    if g.get("actor") is not None and request.method == "GET":
        return redirect(next_url)
    error = None
    name = ""
    if request.method == "POST":
        name = request.form.get("username", "").strip()[:100]
        user = authenticate(name, request.form.get("password", "")[:1000])
        if user is not None:
            _forget()  # a new session: nothing from before sign-in carries over (fixation)
            session[SESSION_USER] = user.id
            session[SESSION_SIGNED_IN] = now().isoformat()
            csrf.rotate()
            return redirect(next_url)
        error = t("sign_in_failed")
    status = 401 if error else 200
    return render_template("ui/login.html", error=error, username=name, next_url=next_url), status


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    _forget()
    flash(t("signed_out"), "info")
    return redirect(url_for("ui_auth.login"))


bp.before_request(load_actor)
bp.before_request(csrf.protect)
errors.install(bp)
