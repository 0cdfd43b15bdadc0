"""Escalation (要対応): an open task past its time limit is told, once per level, to those
who must act on it; they see it in their work queue and acknowledge it.

Level 1, when the task's `due_at` passes: the active supervisors of the task's group. A
group with no active supervisor at that moment escalates to the coordination lead at
level 1 too (the item says so), so an overdue task is never told to nobody. Level 2, when
`escalation_second_factor` times the task's limit has passed since it was created
(default twice the limit): the coordination lead (users with the role coordination_lead).

Claim → write → commit, as the timer sweep does: the claim is a conditional UPDATE of
`human_tasks.escalation_level` (0 → 1, 1 → 2) that only one transaction can win, so any
number of sweepers may run at once and every crossing is told exactly once; the item, the
case's history entry, the outbox event `case.escalated` and the audit record are written in
that same transaction. One task that fails is logged and left for the next sweep; it
never stops the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.casework import writes
from engine.casework.timers import DB_UNAVAILABLE
from engine.env import Env
from engine.errors import Forbidden, Invalid, NotFound
from engine.models import Case, Escalation, HumanTask, User, UserGroup
from engine.ops.db import begin_write, command
from engine.security import audit
from engine.status import Audience, CaseStatus, EventKind, OutboxKind, Role, TaskState
from engine.workflow import limits

log = logging.getLogger(__name__)
MAX_NOTE = 500
# Who may read and act on escalations at all (everyone else: 403).
ESCALATION_ROLES = frozenset({Role.SUPERVISOR, Role.COORDINATION_LEAD, Role.ADMIN})


def group_has_supervisor(session: Session, group_id: str | None) -> bool:
    if group_id is None:
        return False
    members = select(User.roles).join(UserGroup, UserGroup.user_id == User.id).where(
        UserGroup.group_id == group_id, User.active.is_(True))
    return any(Role.SUPERVISOR in (roles or []) for roles in session.scalars(members))


def _claim(session: Session, task_id: str, level: int, now: datetime, escalate_at: datetime | None) -> bool:
    """Move the task from `level - 1` to `level` if it is still open, below `level` and past the
    threshold; True if this transaction won it."""
    due = HumanTask.due_at if level == 1 else HumanTask.escalate_at
    values: dict[str, Any] = {"escalation_level": level}
    if level == 1:
        values["escalate_at"] = escalate_at
    won = session.scalar(
        update(HumanTask)
        .where(HumanTask.id == task_id, HumanTask.state == TaskState.OPEN, HumanTask.escalation_level == level - 1,
               due.is_not(None), due < now)
        .values(**values).returning(HumanTask.id)
        .execution_options(synchronize_session=False))
    return won is not None


def _candidates(session: Session, level: int, now: datetime, skip: list[str], limit: int) -> list[Any]:
    due = HumanTask.due_at if level == 1 else HumanTask.escalate_at
    stmt = (select(HumanTask.id, HumanTask.created_at, HumanTask.due_at)
            .where(HumanTask.escalation_level == level - 1, HumanTask.state == TaskState.OPEN,
                   due.is_not(None), due < now, HumanTask.id.not_in(skip))
            .order_by(due, HumanTask.id).limit(limit))
    return list(session.execute(stmt))


def _escalate(session: Session, env: Env, task_id: str, level: int, now: datetime) -> bool:
    """Claim and tell one crossing of one task. Commits; True if this call told it."""
    begin_write(session)
    row = session.get(HumanTask, task_id)
    if row is None or row.due_at is None:
        session.rollback()
        return False
    second = None
    if level == 1:
        second = row.created_at + (row.due_at - row.created_at) * env.settings.escalation_second_factor
    if not _claim(session, task_id, level, now, second):
        session.rollback()
        return False
    case = session.get(Case, row.case_id)
    if case is None or case.status == CaseStatus.COMPLETED:
        session.commit()  # nothing to tell; the claim keeps it from being looked at again
        return False
    if level == 1 and group_has_supervisor(session, row.group_id):
        audience = Audience.SUPERVISOR
    else:
        audience = Audience.COORDINATION_LEAD
    item = Escalation(task_id=row.id, case_id=case.id, level=level, audience=audience, group_id=row.group_id,
                      due_at=row.due_at, created_at=now)
    session.add(item)
    detail = {"level": level, "audience": str(audience), "group": row.group_id, "due_at": row.due_at.isoformat()}
    if level == 1 and audience == Audience.COORDINATION_LEAD:
        detail["reason"] = "no_supervisor"
    writes.history(session, case, EventKind.TASK_ESCALATED, now, None, row.step, row.name, row.id, detail)
    writes.emit(session, OutboxKind.CASE_ESCALATED, case, now, task_id=row.id, step=row.step, step_name=row.name,
                level=level, audience=str(audience), group=row.group_id, due_at=row.due_at.isoformat())
    audit.record(session, None, audit.Action.TASK_ESCALATE, now, case,
                 {"task_id": row.id, "step": row.step, **detail}, actor_name="scheduler")
    session.commit()
    return True


def escalate_due(session_factory: sessionmaker[Session], env: Env, now: datetime, limit: int = 200) -> int:
    """Tell every crossing due before `now` (at most `limit` per level, earliest first): level 1
    first, then level 2, so a task found far overdue is told to both in one sweep. Returns how
    many this call told; those another sweeper won are not counted."""
    told = 0
    for level in (1, 2):
        tried: list[str] = []
        while len(tried) < limit:
            with session_factory() as session:
                batch = _candidates(session, level, now, tried, min(50, limit - len(tried)))
            if not batch:
                break
            for task_id, _created, _due in batch:
                tried.append(task_id)
                with session_factory() as session:
                    try:
                        told += _escalate(session, env, task_id, level, now)
                    except DB_UNAVAILABLE:
                        session.rollback()
                        raise
                    except Exception:
                        session.rollback()
                        log.exception("escalating task %s to level %s failed; the next sweep tries again",
                                      task_id, level)
    return told


# ---------------------------------------------------------------- the audience's side


@dataclass(frozen=True)
class Item:
    """One 要対応 item as the queue page and the API show it."""

    id: int
    level: int
    audience: str
    task_id: str
    case_id: str
    case_number: str
    process: str
    step: str
    step_name: str
    group: str | None
    assignee: str | None
    due_at: datetime
    escalated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    note: str | None


def _require_role(actor: User) -> None:
    if not ESCALATION_ROLES & set(actor.roles):
        raise Forbidden("要対応を扱えるのは管理職・連携責任者・管理者です / only supervisors, the coordination lead and "
                        "administrators may see escalations")


def audience_clause(actor: User):  # noqa: ANN201
    """A WHERE clause over Escalation: the items `actor` is one of the audience of."""
    parts = []
    if Role.SUPERVISOR in actor.roles and actor.group_ids:
        parts.append((Escalation.audience == Audience.SUPERVISOR) & Escalation.group_id.in_(actor.group_ids))
    if Role.COORDINATION_LEAD in actor.roles:
        parts.append(Escalation.audience == Audience.COORDINATION_LEAD)
    return or_(*parts) if parts else Escalation.id.is_(None)


def _item(session: Session, row: Escalation) -> Item:
    task = row.task
    assignee = session.get(User, task.assignee_id) if task.assignee_id else None
    by = session.get(User, row.acknowledged_by_id) if row.acknowledged_by_id else None
    return Item(row.id, row.level, row.audience, row.task_id, row.case_id, task.case.number, task.process_key,
                task.step, task.name, row.group_id, assignee.name if assignee else None, row.due_at, row.created_at,
                row.acknowledged_at, by.name if by else None, row.note)


def list_escalations(session: Session, actor: User, *, include_acknowledged: bool = False, limit: int = 200,
                     offset: int = 0) -> tuple[list[Item], int]:
    """The caller's items, oldest crossing first, and how many there are. Open (unacknowledged)
    items of tasks still open only, unless `include_acknowledged` (then every item, newest first)."""
    _require_role(actor)
    limits.check_int(limit, "limit", 1)
    limits.check_int(offset, "offset")
    stmt = select(Escalation).where(audience_clause(actor))
    if not include_acknowledged:
        stmt = stmt.where(Escalation.acknowledged_at.is_(None), exists().where(
            HumanTask.id == Escalation.task_id, HumanTask.state == TaskState.OPEN))
        order = [Escalation.due_at, Escalation.id]
    else:
        order = [Escalation.created_at.desc(), Escalation.id.desc()]
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(*order).limit(min(limit, 1000)).offset(offset))
    return [_item(session, r) for r in rows], total


@command
def acknowledge(session: Session, env: Env, actor: User, escalation_id: Any, note: Any, now: datetime) -> Item:
    """Mark an item seen and handled (対応済み) by `actor`, one of its audience; the case's
    history and the audit trail record it. Acknowledging an item again changes nothing."""
    _require_role(actor)
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
        raise Invalid(f"メモは {MAX_NOTE} 文字までの文字列です / note must be a string of at most {MAX_NOTE} characters",
                      {"note": f"at most {MAX_NOTE} characters"})
    limits.check_int(escalation_id, "escalation_id", 1)
    row = session.scalar(select(Escalation).where(Escalation.id == escalation_id, audience_clause(actor))
                         .with_for_update(of=Escalation.__table__))
    if row is None:
        raise NotFound("要対応が見つかりません / escalation not found")
    if row.acknowledged_at is not None:
        session.commit()
        return _item(session, row)
    row.acknowledged_at, row.acknowledged_by_id = now, actor.id
    row.note = note.strip() or None if isinstance(note, str) else None
    case = session.get(Case, row.case_id)
    task = row.task
    writes.history(session, case, EventKind.ESCALATION_ACKNOWLEDGED, now, actor, task.step, task.name, task.id,
                   {"level": row.level, "note": row.note})
    audit.record(session, actor, audit.Action.ESCALATION_ACKNOWLEDGE, now, case,
                 {"escalation_id": row.id, "task_id": task.id, "step": task.step, "level": row.level})
    writes.commit(session)
    return _item(session, row)
