"""The staff pages' Flask session, kept on the server (engine.security.sessions, table web_sessions).

The cookie `tsunagu_session` carries only a random key; everything else (who is signed in,
the CSRF token, the language, messages for the next page) is in the row, so the server can
end a session at once and a replayed cookie opens nothing. The row is read only when a
request looks at the session (pages do; the JSON API and static files do not), and written
only when something in it changed (and last_seen_at at most once a minute). A visitor gets
a row only once there is something to keep (the sign-in form's CSRF token, the language).

The cookie is HttpOnly, SameSite=Lax, and Secure on HTTPS requests or when
TSUNAGU_SECURE_COOKIES is set (app config SESSION_COOKIE_SECURE).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from flask import Flask, Request, request
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy.exc import DBAPIError
from werkzeug.wrappers import Response

from engine.models import WebSession
from engine.security import sessions
from web.extensions import db, now, session_idle_timeout
from web.ui.csrf import FIELD as CSRF_FIELD

COOKIE_NAME = "tsunagu_session"
log = logging.getLogger(__name__)
class StaffSession(SessionMixin):
    """A page session, loaded from its row on first use."""

    def __init__(self, key: str | None) -> None:
        self.key = key  # as the browser sent it (or as issued at sign-in)
        self.row_id: int | None = None
        self._user_id: int | None = None
        self._data: dict[str, Any] | None = None
        self._lapsed: str | None = None
        self.modified = False
        self.accessed = False
        self.new = False
        self.key_changed = False

    # ------------------------------------------------------------ loading

    def _load(self) -> dict[str, Any]:
        if self._data is None:
            self.accessed = True
            found = sessions.resume(db.session, self.key, now(), session_idle_timeout(), request.remote_addr)
            if found.row is not None:
                self._adopt(found.row)
            else:
                self._data, self._lapsed = {}, found.lapsed
                self.new = True
        return self._data

    def _adopt(self, row: WebSession) -> None:
        self._data = {**(row.data or {}), CSRF_FIELD: row.csrf_token}
        self.row_id, self._user_id = row.id, row.user_id

    @property
    def user_id(self) -> int | None:
        self._load()
        return self._user_id

    @property
    def lapsed(self) -> str | None:
        """Why the cookie sent opened nothing: "expired", "ended", "unknown", or None."""
        self._load()
        return self._lapsed

    # ------------------------------------------------------------ sign-in and sign-out

    def begin(self, row: WebSession, key: str) -> None:
        """Switch to a session just opened at sign-in (already stored; a new key for the cookie)."""
        self._adopt(row)
        self.key, self.key_changed, self.modified, self.accessed, self._lapsed = key, True, False, True, None

    def forget(self) -> None:
        """Become a fresh visitor's session (the language stays), e.g. after signing out."""
        lang = self._load().get("lang")
        self._data = {"lang": lang} if lang else {}
        self.row_id, self._user_id, self.key = None, None, None
        self.modified = self.new = True

    # ------------------------------------------------------------ mapping

    def __getitem__(self, name: str) -> Any:
        return self._load()[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._load()[name] = value
        self.modified = True

    def __delitem__(self, name: str) -> None:
        del self._load()[name]
        self.modified = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


class ServerSessionInterface(SessionInterface):
    def open_session(self, app: Flask, request: Request) -> StaffSession:
        return StaffSession(request.cookies.get(app.config["SESSION_COOKIE_NAME"]))

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, StaffSession) or not (session.accessed or session.key_changed):
            return
        response.vary.add("Cookie")
        name = app.config["SESSION_COOKIE_NAME"]
        data = dict(session._data or {})
        csrf = data.pop(CSRF_FIELD, None)
        try:
            if session.row_id is None:
                if session.modified and (data or csrf):
                    row, key = sessions.start_anonymous(db.session, now(), user_agent=request.user_agent.string,
                                                        address=request.remote_addr, data=data, csrf_token=csrf)
                    session.row_id, session.key, session.key_changed = row.id, key, True
                elif request.cookies.get(name):
                    response.delete_cookie(name, path=self.get_cookie_path(app), domain=self.get_cookie_domain(app),
                                           secure=self.get_cookie_secure(app), httponly=True,
                                           samesite=self.get_cookie_samesite(app))
                    return
            elif session.modified:
                sessions.save(db.session, session.row_id, data, csrf)
        except DBAPIError:
            # The page is already made; losing a message or the language choice beats turning
            # it into an error. (A visitor without a row is asked to try the form again.)
            log.warning("page session not saved: the database is unavailable", exc_info=True)
        if session.key_changed and session.key:
            # No Expires: the browser forgets the cookie when it closes; the server ends the
            # session after inactivity or a working day whatever the browser keeps.
            response.set_cookie(name, session.key, path=self.get_cookie_path(app), domain=self.get_cookie_domain(app),
                                secure=self.get_cookie_secure(app), httponly=True,
                                samesite=self.get_cookie_samesite(app))

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure
