"""Staff page sessions, kept on the server (table `web_sessions`).

The browser's cookie holds only a random key; the row keeps a SHA-256 of it, the user, the
CSRF token of the session's forms and the little else a page session carries (language,
messages for the next page). Because the server decides on every request whether the row
is still good, ending a session takes effect at once: signing out, a password change,
disabling a user, the user ending one of their sessions from another device, or an
administrator ending it. A saved copy of the cookie then opens nothing.

A session runs out after `idle` without a request (the caller passes it, from the app's
setting) and MAX_AGE after sign-in in any case. `last_seen_at` is written at most once every
TOUCH_EVERY, so a busy session costs no write per request and idle expiry is exact to
within that interval. A visitor's session before sign-in (no user) carries only the
language, the sign-in form's CSRF token and messages, and is replaced by a new row, with a
new key, at sign-in (no session fixation).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from engine.errors import Forbidden, NotFound
from engine.models import User, WebSession
from engine.ops.db import command
from engine.security import audit
from engine.status import Role, SessionEnd
from engine.workflow.limits import check_int

# A sign-in lasts a working day at most, whatever the browser does with the cookie.
MAX_AGE = timedelta(hours=12)
# A visitor who has not signed in keeps the language choice and the sign-in form this long.
ANONYMOUS_IDLE = MAX_AGE
TOUCH_EVERY = timedelta(minutes=1)
# Ended or run-out rows stay listed this long for anyone looking into an incident, then go.
KEEP_ENDED = timedelta(days=30)
USER_AGENT_LENGTH = 200


def new_key() -> str:
    return secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def is_active(row: WebSession, now: datetime, idle: timedelta) -> bool:
    limit = idle if row.user_id is not None else ANONYMOUS_IDLE
    return row.ended_at is None and now < row.expires_at and now - row.last_seen_at <= limit


@dataclass(frozen=True)
class Resumed:
    """What a cookie's key opened: the row (None if nothing) and, when it opened nothing,
    why ("expired": it ran out; "ended": it was ended; "unknown": no such session)."""

    row: WebSession | None
    lapsed: str | None = None


def resume(session: Session, key: str | None, now: datetime, idle: timedelta, address: str | None = None) -> Resumed:
    """The live session a cookie's key names, its last_seen_at brought up to date."""
    if not key or not isinstance(key, str) or len(key) > 100:
        return Resumed(None, "unknown" if key else None)
    # Read afresh even if this Session saw the row before: it may have been ended since.
    row = session.scalar(select(WebSession).where(WebSession.key_hash == hash_key(key))
                         .execution_options(populate_existing=True))
    if row is None:
        return Resumed(None, "unknown")
    if row.ended_at is not None:
        return Resumed(None, "ended")
    if not is_active(row, now, idle):
        return Resumed(None, "expired")
    if now - row.last_seen_at >= TOUCH_EVERY or (address and address != row.address):
        _touch(session, row.id, now, address)  # the row is read afresh when next used
    return Resumed(row)


@command
def _touch(session: Session, row_id: int, now: datetime, address: str | None) -> None:
    values: dict[str, Any] = {"last_seen_at": now}
    if address:
        values["address"] = address[:100]
    session.execute(update(WebSession).where(WebSession.id == row_id, WebSession.ended_at.is_(None)).values(**values))
    session.commit()


def add(session: Session, user: User | None, now: datetime, *, user_agent: str | None = None,
        address: str | None = None, data: dict[str, Any] | None = None) -> tuple[WebSession, str]:
    """A new session row in the caller's transaction; returns it and the key for the cookie."""
    key = new_key()
    row = WebSession(key_hash=hash_key(key), user_id=user.id if user else None, created_at=now, last_seen_at=now,
                     expires_at=now + MAX_AGE, user_agent=(user_agent or "")[:USER_AGENT_LENGTH],
                     address=(address or None) and address[:100], csrf_token=new_csrf_token(), data=dict(data or {}))
    session.add(row)
    session.flush()
    return row, key


@command
def start_anonymous(session: Session, now: datetime, *, user_agent: str | None, address: str | None,
                    data: dict[str, Any], csrf_token: str | None) -> tuple[WebSession, str]:
    """A visitor's session before sign-in, made when there is first something to keep."""
    purge(session, now)
    row, key = add(session, None, now, user_agent=user_agent, address=address, data=data)
    if csrf_token:
        row.csrf_token = csrf_token
    session.commit()
    return row, key


@command
def save(session: Session, row_id: int, data: dict[str, Any], csrf_token: str | None) -> None:
    """Store what the page put into its session (language, messages, the CSRF token)."""
    values: dict[str, Any] = {"data": data}
    if csrf_token:
        values["csrf_token"] = csrf_token
    session.execute(update(WebSession).where(WebSession.id == row_id, WebSession.ended_at.is_(None)).values(**values))
    session.commit()


def discard(session: Session, key: str | None, now: datetime) -> None:
    """At sign-in, in the caller's transaction: the browser's session until then is worth nothing
    any more (a visitor's is removed; a signed-in one, someone signing in over it, is ended)."""
    if not key or not isinstance(key, str) or len(key) > 100:
        return
    row = session.scalar(select(WebSession).where(WebSession.key_hash == hash_key(key)))
    if row is None:
        return
    if row.user_id is None:
        session.delete(row)
    elif row.ended_at is None:
        _end(session, row, now, SessionEnd.SIGN_OUT)


def purge(session: Session, now: datetime) -> int:
    """Delete visitors' sessions that ran out, and signed-in ones KEEP_ENDED after they ran out."""
    result = session.execute(delete(WebSession).where(
        WebSession.expires_at < now, or_(WebSession.user_id.is_(None), WebSession.expires_at < now - KEEP_ENDED)))
    return result.rowcount or 0


def _end(session: Session, row: WebSession, now: datetime, reason: SessionEnd) -> None:
    row.ended_at = now
    row.end_reason = reason.value
    row.data = {}


@command
def sign_out(session: Session, key: str | None, user: User, now: datetime) -> None:
    """End the session of this cookie key at once, and record the sign-out."""
    row = session.scalar(select(WebSession).where(WebSession.key_hash == hash_key(key))) if key else None
    if row is not None and row.ended_at is None:
        _end(session, row, now, SessionEnd.SIGN_OUT)
    audit.record(session, user, audit.Action.SIGNOUT, now, detail={"session_id": row.id if row else None})
    session.commit()


def end_all(session: Session, actor: User | None, user: User, now: datetime, reason: SessionEnd,
            keep: int | None = None) -> list[int]:
    """End every open session of a user (but `keep`), in the caller's transaction, audited."""
    rows = list(session.scalars(select(WebSession).where(WebSession.user_id == user.id,
                                                         WebSession.ended_at.is_(None))))
    ended = [row.id for row in rows if row.id != keep]
    for row in rows:
        if row.id != keep:
            _end(session, row, now, reason)
    if ended:
        audit.record(session, actor, audit.Action.SESSION_END, now,
                     detail={"user": user.name, "sessions": ended, "reason": reason.value},
                     actor_name=None if actor else "cli")
    return ended


@command
def end_user_sessions(session: Session, actor: User | None, name: str, now: datetime) -> list[int]:
    """End every page session of the user `name` (an administrator, or the CLI with actor None),
    e.g. for a lost or shared device. Returns the ids ended."""
    if actor is not None and Role.ADMIN not in actor.roles:
        raise Forbidden("この操作を行う権限がありません / Only an administrator may end another user's sessions")
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"ユーザー {name!r} はいません / No user {name!r}", {"user": "unknown"})
    reason = SessionEnd.ENDED_BY_USER if actor is not None and actor.id == user.id else SessionEnd.ENDED_BY_ADMIN
    ended = end_all(session, actor, user, now, reason)
    session.commit()
    return ended


@command
def end(session: Session, actor: User, session_id: Any, now: datetime) -> WebSession:
    """End one session: the user's own (from any of their devices) or, for an administrator,
    anyone's. Any other session looks like one that does not exist."""
    row = session.get(WebSession, check_int(session_id, "session_id", 1))
    admin = Role.ADMIN in actor.roles
    if row is None or row.user_id is None or (row.user_id != actor.id and not admin):
        raise NotFound("セッションが見つかりません / No such session")
    if row.ended_at is None:
        reason = SessionEnd.ENDED_BY_USER if row.user_id == actor.id else SessionEnd.ENDED_BY_ADMIN
        _end(session, row, now, reason)
        owner = session.get(User, row.user_id)
        audit.record(session, actor, audit.Action.SESSION_END, now,
                     detail={"user": owner.name if owner else None, "sessions": [row.id], "reason": reason.value})
    session.commit()
    return row


def list_active(session: Session, actor: User, now: datetime, idle: timedelta,
                user_name: str | None = None) -> list[WebSession]:
    """A user's live sessions, most recently used first: the caller's own, or (administrators)
    another user's."""
    user = actor
    if user_name is not None and user_name != actor.name:
        if Role.ADMIN not in actor.roles:
            raise Forbidden("この操作を行う権限がありません / Only an administrator may see another user's sessions")
        user = session.scalar(select(User).where(User.name == user_name))
        if user is None:
            raise NotFound(f"ユーザー {user_name!r} はいません / No user {user_name!r}", {"user": "unknown"})
    rows = session.scalars(select(WebSession).where(WebSession.user_id == user.id, WebSession.ended_at.is_(None),
                                                    WebSession.expires_at > now)
                           .order_by(WebSession.last_seen_at.desc(), WebSession.id.desc()))
    return [row for row in rows if is_active(row, now, idle)]


_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chromium/", "Chromium"),
             ("Chrome/", "Chrome"), ("Safari/", "Safari"), ("curl/", "curl"), ("python-requests", "Python"),
             ("Werkzeug", "Werkzeug"))
_SYSTEMS = (("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("Macintosh", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def describe_device(user_agent: str | None) -> str:
    """A short summary of a User-Agent header ("Chrome / Windows"), for people to recognise
    their own devices; the full header is kept beside it."""
    ua = user_agent or ""
    browser = next((name for needle, name in _BROWSERS if needle in ua), None)
    system = next((name for needle, name in _SYSTEMS if needle in ua), None)
    if browser is None and system is None:
        first = re.split(r"[\s/;(]", ua.strip(), maxsplit=1)[0] if ua.strip() else ""
        return first[:40] or "?"
    return " / ".join(p for p in (browser, system) if p)
