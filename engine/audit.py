"""The audit trail: who read or changed which case's data, when, from where.

Records are append-only and chained: each carries the hash of the one before it and a
hash over its own content. They are written in the transaction of the read or change
they describe, after the single `audit_head` row is locked, so records form one line
in commit order. `verify` walks the chain and reports the first record that was
altered, removed or inserted out of order. (A chain kept in the same database detects
tampering by anyone short of rewriting the whole tail; publish `head()` regularly to
anchor it outside.)

Where a request came from is a plain value the caller sets with `origin_scope` (the web
layer: the client address; the CLI: "cli"; the scheduler: "scheduler").
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.limits import check_instant, check_int
from engine.models import AuditHead, AuditRecord, Case, User

GENESIS = "0" * 64
_origin: contextvars.ContextVar[str | None] = contextvars.ContextVar("tsunagu_origin", default=None)


class Action:
    CASE_READ = "case.read"
    CASE_LIST = "case.list"
    TASK_READ = "task.read"
    QUEUE_READ = "queue.read"
    CASE_START = "case.start"
    TASK_COMPLETE = "task.complete"
    TASK_CLAIM = "task.claim"
    TASK_RELEASE = "task.release"
    TASK_ASSIGN = "task.assign"
    TASK_DRAFT = "task.draft"
    TIMER_FIRE = "timer.fire"
    CONSENT_RECORD = "consent.record"
    CASE_SHARE = "case.share"
    DEFINITION_DEPLOY = "definition.deploy"
    USER_CHANGE = "user.change"
    TOKEN_ISSUE = "token.issue"
    TOKEN_REVOKE = "token.revoke"
    SIGNIN_OK = "signin.ok"
    SIGNIN_FAIL = "signin.fail"
    SIGNOUT = "signout"
    AUDIT_SEARCH = "audit.search"
    AUDIT_EXPORT = "audit.export"


@contextlib.contextmanager
def origin_scope(origin: str | None) -> Iterator[None]:
    token = _origin.set(origin)
    try:
        yield
    finally:
        _origin.reset(token)


def set_origin(origin: str | None) -> None:
    """For callers whose unit of work is not a with-block (a web request, a CLI run)."""
    _origin.set(origin)


def current_origin() -> str | None:
    return _origin.get()


def _digest(seq: int, at: datetime, actor_id: int | None, actor_name: str | None, action: str,
            case_id: str | None, case_number: str | None, origin: str | None, detail: Any, prev: str) -> str:
    body = json.dumps([seq, at.isoformat(), actor_id, actor_name, action, case_id, case_number, origin, detail, prev],
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def record(session: Session, actor: User | None, action: str, now: datetime, case: Case | None = None,
           detail: dict[str, Any] | None = None, actor_name: str | None = None) -> AuditRecord:
    """Append one record in the caller's transaction (committed with it)."""
    head = session.scalar(select(AuditHead).where(AuditHead.id == 1).with_for_update())
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    seq = head.seq + 1
    name = actor.name if actor is not None else actor_name
    origin = current_origin()
    detail = json.loads(json.dumps(detail, default=str, ensure_ascii=False)) if detail else None
    digest = _digest(seq, now, actor.id if actor else None, name, action, case.id if case else None,
                     case.number if case else None, origin, detail, head.hash)
    row = AuditRecord(seq=seq, at=now, actor_id=actor.id if actor else None, actor_name=name, action=action,
                      case_id=case.id if case else None, case_number=case.number if case else None, origin=origin,
                      detail=detail, prev_hash=head.hash, hash=digest)
    session.add(row)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=digest))
    head.seq, head.hash = seq, digest
    return row


@dataclass
class Verification:
    ok: bool
    records: int
    head_hash: str
    problem: str | None = None
    seq: int | None = None


def verify(session: Session, batch: int = 5000) -> Verification:
    """Walk the whole chain; stop at the first fault."""
    prev, expected_seq, count = GENESIS, 1, 0
    last = 0
    while True:
        rows = list(session.scalars(select(AuditRecord).where(AuditRecord.seq > last).order_by(AuditRecord.seq)
                                    .limit(batch)))
        if not rows:
            break
        for r in rows:
            if r.seq != expected_seq:
                return Verification(False, count, prev, f"record {expected_seq} is missing (next is {r.seq})",
                                    expected_seq)
            if r.prev_hash != prev:
                return Verification(False, count, prev, f"record {r.seq} does not follow record {r.seq - 1}", r.seq)
            digest = _digest(r.seq, r.at, r.actor_id, r.actor_name, r.action, r.case_id, r.case_number, r.origin,
                             r.detail, r.prev_hash)
            if digest != r.hash:
                return Verification(False, count, prev, f"record {r.seq} was altered", r.seq)
            prev, expected_seq, count = r.hash, expected_seq + 1, count + 1
            last = r.seq
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != count or head.hash != prev):
        return Verification(False, count, prev, f"the chain ends at record {count} but its head says {head.seq}: "
                                               f"records at the end were removed or the head was altered", count)
    return Verification(True, count, prev)


def search(session: Session, *, user: str | None = None, case_number: str | None = None,
           since: datetime | None = None, until: datetime | None = None, action: str | None = None,
           limit: int = 1000, offset: int = 0) -> list[AuditRecord]:
    check_int(limit, "limit", 1)
    check_int(offset, "offset")
    check_instant(since, "since")
    check_instant(until, "until")
    stmt = select(AuditRecord)
    if user:
        stmt = stmt.where(AuditRecord.actor_name == user)
    if case_number:
        stmt = stmt.where(AuditRecord.case_number == case_number)
    if since:
        stmt = stmt.where(AuditRecord.at >= since)
    if until:
        stmt = stmt.where(AuditRecord.at < until)
    if action:
        stmt = stmt.where(AuditRecord.action == action)
    return list(session.scalars(stmt.order_by(AuditRecord.seq.desc()).limit(limit).offset(offset)))


CSV_COLUMNS = ["seq", "at", "actor_name", "action", "case_number", "origin", "detail", "hash"]


def to_csv(rows: list[AuditRecord]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([r.seq, r.at.isoformat(), r.actor_name or "", r.action, r.case_number or "", r.origin or "",
                         json.dumps(r.detail, ensure_ascii=False) if r.detail else "", r.hash])
    return out.getvalue()


def _require_auditor(actor: User) -> None:
    from engine.errors import Forbidden
    from engine.status import Role

    if not {Role.ADMIN, Role.COORDINATION_LEAD} & set(actor.roles):
        raise Forbidden("only administrators and the coordination lead may search the audit trail")


def search_as(session: Session, actor: User, now: datetime, *, export: bool = False, **filters: Any) -> list[AuditRecord]:
    """Search the trail as `actor` (administrator or coordination lead); the search itself
    is recorded, with its filters, and committed."""
    from engine.db import begin_write

    _require_auditor(actor)
    begin_write(session)
    try:
        rows = search(session, **filters)
        shown = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in filters.items() if v is not None}
        record(session, actor, Action.AUDIT_EXPORT if export else Action.AUDIT_SEARCH, now,
               detail={"filters": shown, "results": len(rows)})
        session.commit()
        return rows
    except BaseException:
        session.rollback()
        raise
