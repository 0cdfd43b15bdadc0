"""Staff sign-in for the pages: user name and password (argon2, engine.security.users), a server-side
page session (web/ui/session.py, engine.security.sessions), sign-out.

Sign-in goes through `engine.security.users.sign_in`, which limits failed attempts per (user name,
address) with a growing delay and per address, records every attempt in the audit trail,
and opens a new session with a new key. A session ends after IDLE_TIMEOUT without a request
(TSUNAGU_IDLE_MINUTES, default 30) and after sessions.MAX_AGE in any case, and at once when
it is signed out or ended (password change, user disabled, ended from the sessions list).
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from engine.errors import Unauthorized
from engine.models import User
from engine.security import sessions, users
from engine.security.users import TooManyAttempts
from engine.settings import ROOT, Settings
from web.extensions import db, now
from web.ui import csrf, errors
from web.ui.i18n import t
from web.ui.session import COOKIE_NAME, ServerSessionInterface, StaffSession

bp = Blueprint("ui_auth", __name__)

# Unattended screens in a shared office: a session left alone this long is over.
IDLE_TIMEOUT = timedelta(minutes=int(os.environ.get("TSUNAGU_IDLE_MINUTES", "30")))
SECRET_FILE = ROOT / "var" / "secret_key"


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
    settings: Settings = app.extensions["tsunagu.settings"]
    # Flask's defaults already hold SESSION_COOKIE_NAME ("session"), so a setdefault is no-op.
    app.config["SESSION_COOKIE_NAME"] = COOKIE_NAME
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if settings.secure_cookies:
        app.config["SESSION_COOKIE_SECURE"] = True
    app.config.setdefault("SESSION_IDLE_TIMEOUT", IDLE_TIMEOUT)
    app.session_interface = ServerSessionInterface()
    users.dummy_hash()  # made now, so that the first unknown name costs no more than any other


def page_session() -> StaffSession:
    return session  # type: ignore[return-value]  # ServerSessionInterface's


def load_actor() -> None:
    """before_request of the page blueprints: g.actor is the signed-in user or None."""
    g.actor = None
    current = page_session()
    uid = current.user_id
    if uid is None:
        if current.lapsed == "expired":
            flash(t("session_expired"), "info")
        elif current.lapsed == "ended":
            flash(t("session_ended"), "info")
        return
    user = db.session.get(User, uid)
    if user is None or not user.active:
        current.forget()
        return
    g.actor = user


# The pages a user whose password an administrator set may still use.
WHILE_PASSWORD_TEMPORARY = frozenset({"ui_admin.tokens_page", "ui_admin.change_password", "ui_auth.logout",
                                      "ui.set_language"})


def login_required(view: Any) -> Any:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.get("actor") is None:
            if request.method == "GET":
                return redirect(url_for("ui_auth.login", next=request.full_path.rstrip("?")))
            return redirect(url_for("ui_auth.login"))
        if g.actor.password_change_required and request.endpoint not in WHILE_PASSWORD_TEMPORARY:
            # A password an administrator chose is known to two people: nothing but changing it
            # (or signing out) until the user has.
            flash(t("password_change_required"), "error")
            return redirect(url_for("ui_admin.tokens_page") + "#password-title")
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


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    next_url = safe_next(request.values.get("next"))
    if g.get("actor") is not None and request.method == "GET":
        return redirect(next_url)
    error = None
    name = ""
    if request.method == "POST":
        name = request.form.get("username", "").strip()[:100]
        current = page_session()
        lang = current.get("lang")
        try:
            _user, row, key = users.sign_in(db.session, name, request.form.get("password", ""),
                                            request.remote_addr, now(), user_agent=request.user_agent.string,
                                            previous_key=current.key, carry={"lang": lang} if lang else None)
        except TooManyAttempts as exc:
            page = render_template("ui/login.html", error=t("sign_in_locked", seconds=exc.retry_after),
                                   username=name, next_url=next_url)
            return Response(page, 429, {"Retry-After": str(exc.retry_after)}, mimetype="text/html")
        except Unauthorized:
            error = t("sign_in_failed")
        else:
            current.begin(row, key)  # a new session and key: nothing from before sign-in opens it
            return redirect(next_url)
    status = 401 if error else 200
    return render_template("ui/login.html", error=error, username=name, next_url=next_url), status


def end_current_session(actor: User) -> None:
    """Sign out: the session's row ends at once (a saved copy of the cookie opens nothing)."""
    current = page_session()
    sessions.sign_out(db.session, current.key, actor, now())
    current.forget()


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    actor = g.get("actor")
    if actor is not None:
        end_current_session(actor)
    else:
        page_session().forget()
    flash(t("signed_out"), "info")
    return redirect(url_for("ui_auth.login"))


bp.before_request(load_actor)
bp.before_request(csrf.protect)
errors.install(bp)
