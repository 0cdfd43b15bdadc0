"""Users, their groups and roles, API tokens, and the group table mirrored from config."""

from __future__ import annotations

import functools
import hashlib
import math
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unauthorized
from engine.models import ApiToken, Group, LoginAttempt, User, WebSession
from engine.ops.db import command
from engine.org import Organisation
from engine.security import audit, sessions
from engine.status import Role, SessionEnd
from engine.workflow.limits import check_int

_hasher = PasswordHasher()


def sync_groups(session: Session, org: Organisation) -> int:
    """Make the groups table match config/organisation.yaml (groups are never deleted:
    history refers to them). Returns the number of rows added or changed."""
    changed = 0
    existing = {g.id: g for g in session.scalars(select(Group))}
    for info in org.groups:
        row = existing.get(info.id)
        if row is None:
            session.add(Group(id=info.id, name=info.name, name_en=info.name_en, kind=info.kind))
            changed += 1
        elif (row.name, row.name_en, row.kind) != (info.name, info.name_en, info.kind):
            row.name, row.name_en, row.kind = info.name, info.name_en, info.kind
            changed += 1
    session.commit()
    return changed


def list_groups(session: Session) -> list[Group]:
    return list(session.scalars(select(Group).order_by(Group.id)))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(session: Session, name: str, groups: list[str], roles: list[str], now: datetime,
             display_name: str | None = None, password: str | None = None) -> User:
    if not name or not name.strip():
        raise Invalid("user name is empty", {"name": "required"})
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists", {"name": "already exists"})
    if not groups:
        raise Invalid("a user belongs to at least one group", {"group": "required"})
    known = {g.id: g for g in session.scalars(select(Group).where(Group.id.in_(groups)))}
    unknown = [g for g in groups if g not in known]
    if unknown:
        raise Invalid(f"unknown group {unknown[0]!r} (see `tsunagu groups`)", {"group": f"unknown: {unknown[0]}"})
    valid_roles = {r.value for r in Role}
    bad = [r for r in roles if r not in valid_roles]
    if bad:
        raise Invalid(f"unknown role {bad[0]!r} (one of {', '.join(sorted(valid_roles))})", {"role": f"unknown: {bad[0]}"})
    if password is not None:
        check_password_policy(password, name)
    user = User(name=name, display_name=display_name or name, roles=sorted(set(roles or [Role.STAFF.value])),
                created_at=now, password_hash=_hasher.hash(password) if password else None)
    user.groups = [known[g] for g in dict.fromkeys(groups)]
    session.add(user)
    session.flush()
    return user


# ---------------------------------------------------------------- passwords

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 1000
# The most used passwords long enough to pass the length rule (lower case; compared case-blind).
COMMON_PASSWORDS = frozenset({
    "0123456789", "1234567890", "12345678910", "123456789012", "0987654321", "1111111111", "1q2w3e4r5t",
    "1q2w3e4r5t6y", "1qaz2wsx3edc", "qwertyuiop", "qwerty1234", "qwerty12345", "asdfghjkl;", "asdfghjkl1",
    "zxcvbnm123", "abcdefghij", "abcd123456", "abc1234567", "password12", "password123", "password1234",
    "password!!", "passw0rd12", "p@ssw0rd12", "iloveyou12", "letmein123", "welcome123", "changeme123",
    "administrator", "admin12345", "admin123456", "tsunagu123", "tsunagu1234", "toyonaka123", "toyonaka1234",
})


def check_password_policy(password: Any, name: str | None = None) -> None:
    """The one password rule of every path (CLI, API, pages): Invalid naming `password`, else None.
    At least PASSWORD_MIN_LENGTH characters, at most PASSWORD_MAX_LENGTH, not one character
    repeated, not the user name, not one of the most common passwords."""
    text = password if isinstance(password, str) else ""
    if not text:
        ja, en = "パスワードを入力してください", "a password is required"
    elif len(text) < PASSWORD_MIN_LENGTH:
        ja, en = (f"パスワードは {PASSWORD_MIN_LENGTH} 文字以上にしてください",
                  f"password must be at least {PASSWORD_MIN_LENGTH} characters")
    elif len(text) > PASSWORD_MAX_LENGTH:
        ja, en = (f"パスワードは {PASSWORD_MAX_LENGTH} 文字以内にしてください",
                  f"password must be at most {PASSWORD_MAX_LENGTH} characters")
    elif len(set(text)) == 1:
        ja, en = "同じ文字だけのパスワードは使えません", "password must not be one character repeated"
    elif name and text.casefold() == name.strip().casefold():
        ja, en = "ユーザー名と同じパスワードは使えません", "password must not be the user name"
    elif text.casefold() in COMMON_PASSWORDS:
        ja, en = "よく使われるパスワードは使えません", "password is one of the most common passwords"
    else:
        return
    raise Invalid(f"{ja} / {en}", {"password": en})


def set_password(user: User, password: str) -> None:
    """Hash and store a password (no policy check: callers that take one from a person use
    check_password_policy first)."""
    user.password_hash = _hasher.hash(password)


def check_password(user: User, password: str) -> bool:
    return _verify(user.password_hash, password)


def _verify(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def dummy_hash() -> str:
    """A hash of no one's password, verified in place of a user's when the name is unknown (or
    has no password), so that every sign-in costs exactly one argon2 verification."""
    return _hasher.hash(secrets.token_urlsafe(16))


def issue_token(session: Session, user: User, now: datetime, label: str = "") -> str:
    token = "tsu_" + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, token_hash=hash_token(token), label=label, created_at=now)
    session.add(row)
    session.flush()
    audit.record(session, None, audit.Action.TOKEN_ISSUE, now, detail={"user": user.name, "token_id": row.id,
                                                                      "label": label}, actor_name=user.name)
    return token


def user_for_token(session: Session, token: str, now: datetime) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    return row.user


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"ユーザー {name!r} はいません / No user {name!r}")
    return user


# ---------------------------------------------------------------- sign-in and administration

SIGNIN_WINDOW = timedelta(minutes=15)
# Failures from one address for one name before each further attempt must wait; the wait
# doubles with every further failure, up to MAX_SIGNIN_DELAY.
FREE_FAILURES = 3
MAX_SIGNIN_DELAY = timedelta(minutes=5)
MAX_FAILURES_PER_ORIGIN = 20


class TooManyAttempts(DomainError):
    code, status = "too_many_attempts", 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _wait_before_sign_in(session: Session, name: str, origin: str | None, now: datetime) -> float:
    """Seconds this address must still wait before trying this name again (0: go ahead).

    Counted per (name, address): someone guessing a colleague's password from one machine
    slows down only themselves, never the colleague signing in from another. Failures before
    the pair's last success do not count."""
    since = now - SIGNIN_WINDOW
    pair = (LoginAttempt.name == name, LoginAttempt.origin == origin)
    last_ok = session.scalar(select(func.max(LoginAttempt.at)).where(*pair, LoginAttempt.success.is_(True),
                                                                      LoginAttempt.at >= since))
    after = LoginAttempt.at > last_ok if last_ok is not None else LoginAttempt.at >= since
    failures, last = session.execute(select(func.count(), func.max(LoginAttempt.at)).where(
        *pair, LoginAttempt.success.is_(False), after)).one()
    if not failures or failures < FREE_FAILURES:
        return 0.0
    delay = min(2.0 ** (failures - FREE_FAILURES + 1), MAX_SIGNIN_DELAY.total_seconds())
    return max(0.0, delay - (now - last).total_seconds())


def _wait_for_origin(session: Session, origin: str | None, now: datetime) -> float:
    """Seconds until an address past MAX_FAILURES_PER_ORIGIN in the window may try again."""
    if not origin:
        return 0.0
    since = now - SIGNIN_WINDOW
    recent = list(session.scalars(select(LoginAttempt.at).where(
        LoginAttempt.origin == origin, LoginAttempt.at >= since, LoginAttempt.success.is_(False))
        .order_by(LoginAttempt.at.desc()).limit(MAX_FAILURES_PER_ORIGIN)))
    if len(recent) < MAX_FAILURES_PER_ORIGIN:
        return 0.0
    return max(1.0, (recent[-1] + SIGNIN_WINDOW - now).total_seconds())


def verify_sign_in(session: Session, name: Any, password: Any, origin: str | None, now: datetime) -> User:
    """Check a user name and password, in the caller's write transaction; records the attempt.
    On success the attempt is left for the caller to commit; a failure is committed here and
    raised (Unauthorized, or TooManyAttempts with the seconds to wait).

    A wrong password and an unknown name cost the same: exactly one argon2 verification,
    against the user's hash or against dummy_hash()."""
    name = name.strip()[:100] if isinstance(name, str) else ""
    password = password[:PASSWORD_MAX_LENGTH] if isinstance(password, str) else ""
    wait = max(_wait_before_sign_in(session, name, origin, now), _wait_for_origin(session, origin, now))
    if wait > 0:
        audit.record(session, None, audit.Action.SIGNIN_FAIL, now, detail={"name": name, "reason": "rate_limited"},
                     actor_name=name or None)
        session.commit()
        seconds = math.ceil(wait)
        raise TooManyAttempts(f"ログインの失敗が続いたため、{seconds} 秒後まで試せません / "
                              f"Too many failed sign-ins; try again in {seconds} seconds", seconds)
    user = session.scalar(select(User).where(User.name == name)) if name else None
    stored = user.password_hash if user is not None and user.password_hash else None
    matches = _verify(stored or dummy_hash(), password)
    ok = bool(matches and stored and user.active)
    session.add(LoginAttempt(name=name, origin=origin, at=now, success=ok))
    if ok:
        audit.record(session, user, audit.Action.SIGNIN_OK, now)
        session.flush()
        return user
    audit.record(session, None, audit.Action.SIGNIN_FAIL, now, detail={"name": name}, actor_name=name or None)
    session.commit()
    raise Unauthorized("ユーザー名またはパスワードが正しくありません / Wrong user name or password")


@command
def authenticate(session: Session, name: Any, password: Any, origin: str | None, now: datetime) -> User:
    """verify_sign_in on its own (no page session): the user, or Unauthorized / TooManyAttempts."""
    user = verify_sign_in(session, name, password, origin, now)
    session.commit()
    return user


@command
def sign_in(session: Session, name: Any, password: Any, origin: str | None, now: datetime, *,
            user_agent: str | None = None, previous_key: str | None = None,
            carry: dict[str, Any] | None = None) -> tuple[User, WebSession, str]:
    """Sign in to the pages: check the password and open a new page session (a new key: the
    visitor's pre-sign-in session `previous_key` is removed, so nothing learnt before sign-in
    opens anything after). `carry` is what the new session keeps (the language). Returns the
    user, the session row and the key for the cookie; the attempt, its audit record and the
    session commit together."""
    user = verify_sign_in(session, name, password, origin, now)
    sessions.discard(session, previous_key, now)
    row, key = sessions.add(session, user, now, user_agent=user_agent, address=origin, data=carry)
    session.commit()
    return user, row, key


def require_admin(actor: User) -> None:
    if Role.ADMIN not in actor.roles:
        raise Forbidden("この操作を行う権限がありません / Only an administrator may manage users")


@command
def change_user(session: Session, actor: User | None, name: str, now: datetime, *,
                add_groups: list[str] = (), remove_groups: list[str] = (), add_roles: list[str] = (),
                remove_roles: list[str] = (), active: bool | None = None, password: str | None = None) -> User:
    """Change a user's groups, roles, status or password. `actor` None means the CLI
    (an operator on the server); otherwise an administrator."""
    if actor is not None:
        require_admin(actor)
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"ユーザー {name!r} はいません / No user {name!r}")
    valid_roles = {r.value for r in Role}
    bad = [r for r in list(add_roles) + list(remove_roles) if r not in valid_roles]
    if bad:
        raise Invalid(f"ロール {bad[0]!r} はありません / Unknown role {bad[0]!r}", {"role": f"unknown: {bad[0]}"})
    groups = {g.id: g for g in session.scalars(select(Group))}
    unknown = [g for g in list(add_groups) + list(remove_groups) if g not in groups]
    if unknown:
        raise Invalid(f"機関 {unknown[0]!r} はありません / Unknown group {unknown[0]!r}", {"group": f"unknown: {unknown[0]}"})
    new_groups = [g for g in dict.fromkeys(user.group_ids + list(add_groups)) if g not in remove_groups]
    if not new_groups:
        raise Invalid("ユーザーは少なくとも一つの機関に所属します / A user belongs to at least one group",
                      {"group": "cannot remove the last group"})
    if password is not None:
        check_password_policy(password, user.name)
    before = {"groups": user.group_ids, "roles": list(user.roles), "active": user.active}
    user.groups = [groups[g] for g in new_groups]
    user.roles = sorted((set(user.roles) | set(add_roles)) - set(remove_roles))
    was_active = user.active
    if active is not None:
        user.active = active
    if password is not None:
        set_password(user, password)
        # Chosen by an administrator (the CLI is the operator setting up the first accounts).
        user.password_change_required = actor is not None
    after = {"groups": new_groups, "roles": user.roles, "active": user.active, "password_changed": password is not None}
    audit.record(session, actor, audit.Action.USER_CHANGE, now, detail={"user": name, "before": before, "after": after},
                 actor_name=None if actor else "cli")
    # A new password or a disabled account ends the user's page sessions at once (API tokens
    # are separate credentials: revoked on their own; a disabled user's stop working anyway).
    if password is not None:
        sessions.end_all(session, actor, user, now, SessionEnd.PASSWORD_CHANGED)
    elif was_active and not user.active:
        sessions.end_all(session, actor, user, now, SessionEnd.USER_DISABLED)
    session.commit()
    return user


USER_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
DISPLAY_NAME_MAX = 200


@command
def create_user(session: Session, actor: User, name: Any, display_name: Any, groups: Any, roles: Any,
                password: Any, now: datetime) -> User:
    """An administrator adds a user with an initial password (the user changes it on the account
    page). Every field is checked before anything is written; a refusal names each field at fault
    (name, display_name, groups, roles, password), Japanese first."""
    require_admin(actor)
    problems: dict[str, str] = {}
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        problems["name"] = "ユーザー名を入力してください / a user name is required"
    elif not USER_NAME.fullmatch(name):
        problems["name"] = ("ユーザー名は半角の英小文字・数字・「.」「_」「-」で、100 文字以内です（例: hokatsu.sato） / "
                            "a user name is lower-case letters, digits, '.', '_' or '-', at most 100 characters")
    elif session.scalar(select(User.id).where(func.lower(User.name) == name)) is not None:
        problems["name"] = f"ユーザー名 {name} は既に使われています / the user name {name} is already taken"
    display = " ".join(display_name.split()) if isinstance(display_name, str) else ""
    if not display:
        problems["display_name"] = "氏名を入力してください / a display name is required"
    elif len(display) > DISPLAY_NAME_MAX:
        problems["display_name"] = (f"氏名は {DISPLAY_NAME_MAX} 文字以内です / a display name is at most "
                                    f"{DISPLAY_NAME_MAX} characters")
    group_ids = list(dict.fromkeys(groups)) if isinstance(groups, list | tuple) else []
    known = {g.id: g for g in session.scalars(select(Group))}
    if not group_ids:
        problems["groups"] = "所属する機関を一つ以上選んでください / choose at least one group"
    elif unknown := [g for g in group_ids if g not in known]:
        problems["groups"] = f"機関 {unknown[0]!r} はありません / unknown group {unknown[0]!r}"
    role_names = sorted(set(roles)) if isinstance(roles, list | tuple) else None
    valid_roles = {r.value for r in Role}
    if role_names is None or not role_names:
        problems["roles"] = "役割を一つ以上選んでください / choose at least one role"
    elif bad := [r for r in role_names if r not in valid_roles]:
        problems["roles"] = f"役割 {bad[0]!r} はありません / unknown role {bad[0]!r}"
    try:
        check_password_policy(password, name or None)
    except Invalid as exc:
        problems["password"] = exc.message
    if problems:
        raise Invalid(f"入力内容に誤りがあります / Invalid fields: {', '.join(sorted(problems))}", problems)
    user = User(name=name, display_name=display, roles=role_names, created_at=now, password_change_required=True)
    set_password(user, password)
    user.groups = [known[g] for g in group_ids]
    session.add(user)
    session.flush()
    audit.record(session, actor, audit.Action.USER_CREATE, now,
                 detail={"user": name, "after": {"groups": group_ids, "roles": role_names, "active": True}})
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # the same name added meanwhile
        raise Conflict(f"ユーザー名 {name} は既に使われています / the user name {name} is already taken",
                       {"name": "already taken"}) from None
    return user


@command
def change_own_password(session: Session, user: User, current: Any, new: Any, now: datetime,
                        keep_session: int | None = None) -> User:
    """A user changes their own password, proving the current one. Every other page session
    of theirs ends (the one they are using, `keep_session`, stays)."""
    user = session.get(User, user.id)
    if user is None or not user.active:
        raise Unauthorized("ログインしてください / Please sign in")
    if not isinstance(current, str) or not check_password(user, current[:PASSWORD_MAX_LENGTH]):
        raise Invalid("現在のパスワードが正しくありません / The current password is wrong",
                      {"current_password": "wrong password"})
    check_password_policy(new, user.name)
    if new == current:
        raise Invalid("新しいパスワードが現在のものと同じです / The new password is the same as the current one",
                      {"password": "same as the current password"})
    set_password(user, new)
    user.password_change_required = False
    audit.record(session, user, audit.Action.USER_CHANGE, now,
                 detail={"user": user.name, "after": {"password_changed": True}})
    sessions.end_all(session, user, user, now, SessionEnd.PASSWORD_CHANGED, keep=keep_session)
    session.commit()
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


def list_tokens(session: Session, actor: User, *, all_users: bool = False) -> list[ApiToken]:
    stmt = select(ApiToken).order_by(ApiToken.id)
    if all_users:
        require_admin(actor)
    else:
        stmt = stmt.where(ApiToken.user_id == actor.id)
    return list(session.scalars(stmt))


@command
def revoke(session: Session, actor: User | None, token_id: Any, now: datetime) -> ApiToken:
    """Revoke a token: the owner, an administrator, or the CLI (actor None). Takes effect
    on the very next request, which looks the token up afresh."""
    row = session.get(ApiToken, check_int(token_id, "token_id", 1))
    if row is None or (actor is not None and row.user_id != actor.id and Role.ADMIN not in actor.roles):
        raise NotFound("トークンが見つかりません / No such token")
    row.revoked_at = row.revoked_at or now
    audit.record(session, actor, audit.Action.TOKEN_REVOKE, now, detail={"token_id": row.id, "user": row.user.name},
                 actor_name=None if actor else "cli")
    session.commit()
    return row

