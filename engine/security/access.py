"""Who may see or act on a case, and the work queue filter.

May see a case's data: members of its referring group, the secretariat and its
coordination lead (the case-wide groups, or users with those roles), users who hold or
completed one of its tasks, groups named as participants of its support meeting (from
the moment the meeting record is saved), and groups it was shared with under consent. Everyone else is told the case
does not exist (404), so numbers cannot be probed.

A refusal of an existing case or task is itself put on the audit trail (`access.denied`:
who, which case, what was attempted), committed on its own since the refused request's
transaction is rolled back; the caller still sees the same NotFound as for an id that
does not exist.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import case, exists, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from engine.clock import utcnow
from engine.errors import Forbidden, NotFound
from engine.models import Case, CaseMember, HumanTask, User
from engine.ops.db import begin_write
from engine.org import Organisation
from engine.security import audit
from engine.status import Role, TaskState

log = logging.getLogger(__name__)


DESIGNER_ROLES = frozenset({Role.DESIGNER, Role.ADMIN})
# How a group that joined a case at its support meeting is recorded (case_members.source).
MEETING_SOURCE = "support_meeting"


def require_designer(actor: User | None) -> None:
    """Process definitions and forms are for process designers and administrators (None is the
    command line, run by whoever holds the server's configuration)."""
    if actor is not None and not DESIGNER_ROLES & set(actor.roles):
        raise Forbidden("プロセスの設計はプロセス設計者と管理者だけができます / only process designers and "
                        "administrators may work on process definitions and forms")


def sees_every_case(actor: User, org: Organisation) -> bool:
    """The secretariat and its coordination lead, by group or by role."""
    return bool(set(actor.group_ids) & org.case_wide_groups) or bool(
        {Role.SECRETARIAT, Role.COORDINATION_LEAD} & set(actor.roles))


def visible_cases_clause(actor: User, org: Organisation):  # noqa: ANN201
    """A WHERE clause over Case that keeps the cases `actor` may see."""
    groups = set(actor.group_ids)
    if sees_every_case(actor, org):
        return Case.id.is_not(None)
    return or_(
        Case.referring_group_id.in_(groups),
        exists().where(CaseMember.case_id == Case.id, CaseMember.group_id.in_(groups)),
        exists().where(HumanTask.case_id == Case.id,
                       or_(HumanTask.assignee_id == actor.id, HumanTask.completed_by_id == actor.id)),
    )


def visible_cases_bulk_clause(actor: User, org: Organisation):  # noqa: ANN201
    """The same cases as `visible_cases_clause`, shaped for a query over many cases (the reports):
    the cases seen through a meeting or through the actor's own tasks are each one uncorrelated
    set, read once from an index and then looked up per row, where the per-case form runs two
    correlated subqueries for every row it tests."""
    groups = set(actor.group_ids)
    if sees_every_case(actor, org):
        return Case.id.is_not(None)
    seen = or_(
        Case.referring_group_id.in_(groups),
        Case.id.in_(select(CaseMember.case_id).where(CaseMember.group_id.in_(groups))),
        Case.id.in_(select(HumanTask.case_id).where(HumanTask.assignee_id == actor.id)),
        Case.id.in_(select(HumanTask.case_id).where(HumanTask.completed_by_id == actor.id)),
    )
    # A test of the rows the query's own index found, never the way in: as a bare OR, SQLite's
    # planner may drive the query from every case of the reader's groups (a multi-index OR, a
    # fifth of all cases) instead of the few rows a report's range selects.
    return case((seen, 1), else_=0) == 1


def can_see_case(session: Session, actor: User, case: Case, org: Organisation) -> bool:
    if sees_every_case(actor, org) or case.referring_group_id in actor.group_ids:
        return True
    stmt = select(Case.id).where(Case.id == case.id, visible_cases_clause(actor, org))
    return session.scalar(stmt) is not None


def may_edit_case(session: Session, actor: User, case: Case, org: Organisation) -> bool:
    """May change what the case file holds beside its steps (its household): the secretariat,
    the referring group, the groups of its support meeting, and whoever has one of its steps
    open now (assigned, or in their group's queue). Those who see the case only because it was
    shared for a review, or because they once completed a step of it, read it only."""
    groups = set(actor.group_ids)
    if sees_every_case(actor, org) or case.referring_group_id in groups:
        return True
    meeting = exists().where(CaseMember.case_id == case.id, CaseMember.group_id.in_(groups),
                             CaseMember.source == MEETING_SOURCE)
    working = exists().where(HumanTask.case_id == case.id, HumanTask.state == TaskState.OPEN,
                             or_(HumanTask.assignee_id == actor.id, HumanTask.group_id.in_(groups)))
    return bool(session.scalar(select(or_(meeting, working))))


def require_case(session: Session, actor: User, case_id: Any, org: Organisation, *,
                 via: str = audit.Action.CASE_READ, now: datetime | None = None) -> Case:
    """The case, if `actor` may see it; else NotFound, the refusal of an existing case
    recorded as an attempt at `via` (an audit action)."""
    case = session.get(Case, case_id) if isinstance(case_id, str) else None
    if case is None:
        raise NotFound("case not found")
    if not can_see_case(session, actor, case, org):
        record_denial(session, actor, case, now, {"via": via})
        raise NotFound("case not found")
    return case


def record_denial(session: Session, actor: User, case: Case, now: datetime | None, detail: dict[str, Any]) -> None:
    """Put a refused attempt on the trail in a transaction of its own. Whatever the caller
    had begun is rolled back first: the attempt is refused, so nothing of it may be kept.
    If the record cannot be written (the database is away or read-only) the refusal still
    stands: it is logged, never turned into a different answer."""
    actor_id, case_id = actor.id, case.id
    session.rollback()
    try:
        begin_write(session)
        audit.record(session, session.get(User, actor_id), audit.Action.ACCESS_DENIED, now or utcnow(),
                     session.get(Case, case_id), detail)
        session.commit()
    except SQLAlchemyError as exc:
        log.warning("could not record the refused access of user %s to case %s: %s", actor_id, case_id,
                    (str(exc).splitlines() or ["?"])[0])
        try:
            session.rollback()
        except SQLAlchemyError:
            log.debug("rollback after a failed denial record failed too", exc_info=True)


def task_queue_clause(actor: User):  # noqa: ANN201
    """Open tasks of the actor's groups and those assigned to the actor."""
    return (HumanTask.state == TaskState.OPEN) & or_(
        HumanTask.group_id.in_(actor.group_ids), HumanTask.assignee_id == actor.id)


def can_work_on(actor: User, task: HumanTask) -> bool:
    return task.assignee_id == actor.id or task.group_id in actor.group_ids

