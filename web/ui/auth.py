"""Staff sign-in for the pages: user name and password (argon2, engine.users), a signed
session cookie, sign-out.

Sign-in goes through `engine.users.authenticate`, which limits failed attempts per user
name and per address and records every attempt in the audit trail. A session ends after
IDLE_TIMEOUT without a request (TSUNAGU_IDLE_MINUTES, default 30) and after
MAX_SESSION_AGE in any case. The session cookie is HttpOnly, SameSite=Lax, and
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

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Response

from engine import users
from engine.errors import Unauthorized
from engine.models import User
from engine.settings import ROOT
from engine.users import TooManyAttempts
from web.extensions import db, now
from web.ui import csrf, errors
from web.ui.i18n import t

bp = Blueprint("ui_auth", __name__)

SESSION_USER = "uid"
SESSION_SIGNED_IN = "signed_in_at"
SESSION_SEEN = "seen_at"
# Unattended screens in a shared office: a session left alone this long is over.
IDLE_TIMEOUT = timedelta(minutes=int(os.environ.get("TSUNAGU_IDLE_MINUTES", "30")))
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
    signed_in, seen = session.get(SESSION_SIGNED_IN), session.get(SESSION_SEEN)
    at = now()
    try:
        idle = current_app.config.get("SESSION_IDLE_TIMEOUT", IDLE_TIMEOUT)
        fresh = (at - datetime.fromisoformat(signed_in) <= MAX_SESSION_AGE
                 and at - datetime.fromisoformat(seen or signed_in) <= idle)
    except (TypeError, ValueError):
        fresh = False
    user = db.session.get(User, uid) if isinstance(uid, int) and fresh else None
    if user is None or not user.active:
        _forget()
        if not fresh:
            flash(t("session_expired"), "info")
        return
    g.actor = user
    session[SESSION_SEEN] = at.isoformat()


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
    """The user, or None for a wrong name or password (TooManyAttempts past the limit)."""
    try:
        return users.authenticate(db.session, name, password, request.remote_addr, now())
    except Unauthorized:
        users.check_password(_DUMMY, password)  # a wrong name costs as long as a wrong password
        return None


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    next_url = safe_next(request.values.get("next"))
    if g.get("actor") is not None and request.method == "GET":
        return redirect(next_url)
    error = None
    name = ""
    if request.method == "POST":
        name = request.form.get("username", "").strip()[:100]
        try:
            user = authenticate(name, request.form.get("password", "")[:1000])
        except TooManyAttempts:
            return render_template("ui/login.html", error=t("sign_in_locked"), username=name,
                                   next_url=next_url), 429
        if user is not None:
            _forget()  # a new session: nothing from before sign-in carries over (fixation)
            session[SESSION_USER] = user.id
            session[SESSION_SIGNED_IN] = session[SESSION_SEEN] = now().isoformat()
            csrf.rotate()
            return redirect(next_url)
        error = t("sign_in_failed")
    status = 401 if error else 200
    return render_template("ui/login.html", error=error, username=name, next_url=next_url), status


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    actor = g.get("actor")
    if actor is not None:
        users.record_sign_out(db.session, actor, now())
    _forget()
    flash(t("signed_out"), "info")
    return redirect(url_for("ui_auth.login"))


bp.before_request(load_actor)
bp.before_request(csrf.protect)
errors.install(bp)
