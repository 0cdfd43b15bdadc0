"""Users, their groups and roles, API tokens, and the group table mirrored from config."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Conflict, Invalid, NotFound
from engine.models import ApiToken, Group, User
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
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), label=label, created_at=now))
    session.flush()
    return token


def user_for_token(session: Session, token: str, now: datetime) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    return row.user


def revoke_token(session: Session, token_id: int, now: datetime) -> None:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound("no such token")
    row.revoked_at = row.revoked_at or now
    session.commit()


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user {name!r}")
    return user
