"""Users, their groups and roles, API tokens, and the group table mirrored from config."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import audit
from engine.db import command
from engine.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unauthorized
from engine.limits import check_int
from engine.models import ApiToken, Group, LoginAttempt, User
from engine.org import Organisation
from engine.status import Role

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
    user = User(name=name, display_name=display_name or name, roles=sorted(set(roles or [Role.STAFF.value])),
                created_at=now, password_hash=_hasher.hash(password) if password else None)
    user.groups = [known[g] for g in dict.fromkeys(groups)]
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    user.password_hash = _hasher.hash(password)


def check_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


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
        raise NotFound(f"no user {name!r}")
    return user


# ---------------------------------------------------------------- sign-in and administration

SIGNIN_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_NAME = 5
MAX_FAILURES_PER_ORIGIN = 20


class TooManyAttempts(DomainError):
    code, status = "too_many_attempts", 429


@command
def authenticate(session: Session, name: Any, password: Any, origin: str | None, now: datetime) -> User:
    """Check a user name and password. Failures are counted per name and per address;
    past the limit every attempt is refused for the window, right password or not."""
    name = name.strip() if isinstance(name, str) else ""
    since = now - SIGNIN_WINDOW
    by_name = session.scalar(select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.name == name, LoginAttempt.at >= since, LoginAttempt.success.is_(False))) or 0
    by_origin = session.scalar(select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.origin == origin, LoginAttempt.at >= since, LoginAttempt.success.is_(False))) or 0 if origin else 0
    if by_name >= MAX_FAILURES_PER_NAME or by_origin >= MAX_FAILURES_PER_ORIGIN:
        session.add(LoginAttempt(name=name[:100], origin=origin, at=now, success=False))
        audit.record(session, None, audit.Action.SIGNIN_FAIL, now, detail={"name": name[:100], "reason": "rate_limited"},
                     actor_name=name[:100] or None)
        session.commit()
        raise TooManyAttempts("試行回数が多すぎます。しばらくしてから再度お試しください / "
                              "Too many failed sign-ins; try again in 15 minutes")
    user = session.scalar(select(User).where(User.name == name)) if name else None
    ok = user is not None and user.active and isinstance(password, str) and check_password(user, password)
    session.add(LoginAttempt(name=name[:100], origin=origin, at=now, success=ok))
    if ok:
        audit.record(session, user, audit.Action.SIGNIN_OK, now)
        session.commit()
        return user
    audit.record(session, None, audit.Action.SIGNIN_FAIL, now, detail={"name": name[:100]}, actor_name=name[:100] or None)
    session.commit()
    raise Unauthorized("ユーザー名またはパスワードが正しくありません / Wrong user name or password")


def require_admin(actor: User) -> None:
    if Role.ADMIN not in actor.roles:
        raise Forbidden("only an administrator may manage users")


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
        raise NotFound(f"no user {name!r}")
    valid_roles = {r.value for r in Role}
    bad = [r for r in list(add_roles) + list(remove_roles) if r not in valid_roles]
    if bad:
        raise Invalid(f"unknown role {bad[0]!r}", {"role": f"unknown: {bad[0]}"})
    groups = {g.id: g for g in session.scalars(select(Group))}
    unknown = [g for g in list(add_groups) + list(remove_groups) if g not in groups]
    if unknown:
        raise Invalid(f"unknown group {unknown[0]!r}", {"group": f"unknown: {unknown[0]}"})
    new_groups = [g for g in dict.fromkeys(user.group_ids + list(add_groups)) if g not in remove_groups]
    if not new_groups:
        raise Invalid("a user belongs to at least one group", {"group": "cannot remove the last group"})
    before = {"groups": user.group_ids, "roles": list(user.roles), "active": user.active}
    user.groups = [groups[g] for g in new_groups]
    user.roles = sorted((set(user.roles) | set(add_roles)) - set(remove_roles))
    if active is not None:
        user.active = active
    if password:
        if len(password) < 10:
            raise Invalid("password must be at least 10 characters", {"password": "at least 10 characters"})
        set_password(user, password)
    after = {"groups": new_groups, "roles": user.roles, "active": user.active, "password_changed": bool(password)}
    audit.record(session, actor, audit.Action.USER_CHANGE, now, detail={"user": name, "before": before, "after": after},
                 actor_name=None if actor else "cli")
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
        raise NotFound("no such token")
    row.revoked_at = row.revoked_at or now
    audit.record(session, actor, audit.Action.TOKEN_REVOKE, now, detail={"token_id": row.id, "user": row.user.name},
                 actor_name=None if actor else "cli")
    session.commit()
    return row


@command
def record_sign_out(session: Session, user: User, now: datetime) -> None:
    audit.record(session, user, audit.Action.SIGNOUT, now)
    session.commit()
