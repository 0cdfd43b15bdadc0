"""Registered message sources: who may POST signed messages to /webhooks/<name>, with which
secret, reaching which process; and the store of webhook ids already received from them.

A source's secret is a Standard Webhooks secret, `whsec_` + base64 of 32 random bytes. It is
shown once, when the source is added, and stored as is (an HMAC is checked with the key
itself, so it cannot be kept hashed like API tokens).
"""

from __future__ import annotations

import base64
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.casework.messages import default_group
from engine.env import Env
from engine.errors import Conflict, Forbidden, Invalid, NotFound
from engine.models import Group, InboundMessage, ProcessDefinition, Source, User
from engine.ops.db import command
from engine.security import audit
from engine.status import Role

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SECRET_BYTES = 32
# Webhook ids are remembered this long; a sender's timestamp tolerance is 5 minutes, so a
# replay older than this is refused by its timestamp anyway.
REPLAY_WINDOW = timedelta(hours=24)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _require_admin(actor: User | None) -> None:
    # None is the command line, run by whoever holds the server's configuration.
    if actor is not None and Role.ADMIN not in actor.roles:
        raise Forbidden("メッセージ送信元の管理は管理者だけができます / only an administrator may manage message sources")


@command
def add_source(session: Session, env: Env, actor: User | None, name: object, now: datetime,
               process_key: object = None, group: object = None) -> Source:
    """Register a source; its secret is on the returned row (shown once to the caller)."""
    _require_admin(actor)
    if not isinstance(name, str) or not NAME.match(name):
        raise Invalid("送信元名は英小文字・数字・-・_ の 1〜64 文字です / name must be 1-64 of a-z, 0-9, - and _",
                      {"name": "a-z, 0-9, - and _, at most 64"})
    if process_key is not None and (not isinstance(process_key, str) or session.scalar(
            select(ProcessDefinition.id).where(ProcessDefinition.process_key == process_key).limit(1)) is None):
        raise Invalid(f"プロセス {process_key!r} はありません / unknown process {process_key!r}",
                      {"process": "unknown process"})
    group = default_group(env.org) if group is None else group
    if not isinstance(group, str) or session.get(Group, group) is None:
        raise Invalid(f"グループ {group!r} はありません / unknown group {group!r}", {"group": "unknown group"})
    if session.scalar(select(Source.id).where(Source.name == name)) is not None:
        raise Conflict(f"送信元 {name!r} は登録済みです / source {name!r} already exists", {"name": "already exists"})
    source = Source(name=name, secret=new_secret(), process_key=process_key, group_id=group, active=True,
                    created_at=now)
    session.add(source)
    session.flush()
    audit.record(session, actor, audit.Action.SOURCE_ADD, now, detail={"source": name, "process": process_key,
                                                                        "group": group},
                 actor_name=None if actor else "cli")
    session.commit()
    return source


def list_sources(session: Session, actor: User | None) -> list[Source]:
    _require_admin(actor)
    return list(session.scalars(select(Source).order_by(Source.name)))


@command
def remove_source(session: Session, actor: User | None, name: object, now: datetime) -> Source:
    """Remove a source: its messages are refused from now on (its replay store goes with it)."""
    _require_admin(actor)
    source = session.scalar(select(Source).where(Source.name == name)) if isinstance(name, str) else None
    if source is None:
        raise NotFound(f"送信元 {name!r} はありません / no source {name!r}")
    session.execute(delete(InboundMessage).where(InboundMessage.source_id == source.id))
    session.delete(source)
    audit.record(session, actor, audit.Action.SOURCE_REMOVE, now, detail={"source": source.name},
                 actor_name=None if actor else "cli")
    session.commit()
    return source


def process_keys(session: Session) -> list[str]:
    """Processes a source may be tied to."""
    return list(session.scalars(select(ProcessDefinition.process_key).distinct().order_by(ProcessDefinition.process_key)))


def active_source(session: Session, name: object) -> Source | None:
    if not isinstance(name, str):
        return None
    return session.scalar(select(Source).where(Source.name == name, Source.active.is_(True)))


@command
def prune_received(session: Session, now: datetime, keep: timedelta = REPLAY_WINDOW) -> int:
    """Forget webhook ids received longer ago than `keep` (the sweep calls this). Returns how many."""
    result = session.execute(delete(InboundMessage).where(InboundMessage.received_at < now - keep))
    session.commit()
    return result.rowcount or 0
