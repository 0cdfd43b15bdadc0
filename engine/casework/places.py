"""The register of participation places (参加支援): activities, workplaces and community
places a person can be matched to. Kept by the secretariat and administrators; anyone
signed in reads it (the places are public facilities, not personal data)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.casework.inputs import code, field_error, flag, only_fields, text
from engine.casework.vocabulary import codes, load_vocabulary
from engine.env import Env
from engine.errors import Forbidden, NotFound
from engine.models import Group, Place, User
from engine.ops.db import command
from engine.security import audit
from engine.security.access import sees_every_case
from engine.status import Role
from engine.workflow.limits import check_int

FIELDS = {"name", "kind", "description", "group", "capacity", "active"}


def may_keep(actor: User, env: Env) -> bool:
    return bool(sees_every_case(actor, env.org) or {Role.SECRETARIAT, Role.ADMIN} & set(actor.roles))


def _apply(session: Session, env: Env, row: Place, body: dict[str, Any], creating: bool) -> None:
    if creating or "name" in body:
        row.name = text(body.get("name"), "name", 200, required=True)
    if creating or "kind" in body:
        row.kind = code(body.get("kind"), codes(load_vocabulary(env.settings.config_dir).place_kinds), "kind")
    if "description" in body:
        row.description = text(body.get("description"), "description")
    if "group" in body:
        group = body["group"]
        if group is not None and (not isinstance(group, str) or session.get(Group, group) is None):
            raise field_error("group", f"グループ {group!r} はありません", f"unknown group {group!r}")
        row.group_id = group
    if "capacity" in body:
        row.capacity = None if body["capacity"] is None else check_int(body["capacity"], "capacity", 1, 10_000)
    if "active" in body:
        row.active = flag(body["active"], "active")


@command
def add_place(session: Session, env: Env, actor: User, body: Any, now: datetime) -> Place:
    if not may_keep(actor, env):
        raise Forbidden("参加先を登録できるのは事務局と管理者です / only the secretariat or an administrator may "
                        "register places")
    only_fields(body, FIELDS)
    row = Place(description="", active=True, created_at=now)
    _apply(session, env, row, body, creating=True)
    session.add(row)
    session.flush()
    audit.record(session, actor, audit.Action.PLACE_CHANGE, now, detail={"place": row.id, "added": True})
    session.commit()
    return row


@command
def change_place(session: Session, env: Env, actor: User, place_id: Any, body: Any, now: datetime) -> Place:
    if not may_keep(actor, env):
        raise Forbidden("参加先を変更できるのは事務局と管理者です / only the secretariat or an administrator may "
                        "change places")
    row = get_place(session, place_id)
    only_fields(body, FIELDS)
    _apply(session, env, row, body, creating=False)
    audit.record(session, actor, audit.Action.PLACE_CHANGE, now, detail={"place": row.id, "fields": sorted(body)})
    session.commit()
    return row


def get_place(session: Session, place_id: Any) -> Place:
    row = session.get(Place, check_int(place_id, "place_id"))
    if row is None:
        raise NotFound("参加先が見つかりません / place not found")
    return row


def list_places(session: Session, active_only: bool = False) -> list[Place]:
    stmt = select(Place).order_by(Place.kind, Place.name, Place.id)
    if active_only:
        stmt = stmt.where(Place.active.is_(True))
    return list(session.scalars(stmt.limit(2000)))
