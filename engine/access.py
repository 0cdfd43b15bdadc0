"""Who may see or act on a case, and the work queue filter.

May see a case's data: members of its referring group, the secretariat and its
coordination lead (the case-wide groups, or users with those roles), users who hold or
completed one of its tasks, groups named as participants of its support meeting (from
the moment the meeting record is saved), and groups it was shared with under consent. Everyone else is told the case
does not exist (404), so numbers cannot be probed.
"""

from __future__ import annotations

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.models import Case, CaseMember, HumanTask, User
from engine.org import Organisation
from engine.status import Role, TaskState


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


def can_see_case(session: Session, actor: User, case: Case, org: Organisation) -> bool:
    if sees_every_case(actor, org) or case.referring_group_id in actor.group_ids:
        return True
    stmt = select(Case.id).where(Case.id == case.id, visible_cases_clause(actor, org))
    return session.scalar(stmt) is not None


def require_case(session: Session, actor: User, case_id: str, org: Organisation) -> Case:
    case = session.get(Case, case_id)
    if case is None or not can_see_case(session, actor, case, org):
        raise NotFound("case not found")
    return case


def task_queue_clause(actor: User):  # noqa: ANN201
    """Open tasks of the actor's groups and those assigned to the actor."""
    return (HumanTask.state == TaskState.OPEN) & or_(
        HumanTask.group_id.in_(actor.group_ids), HumanTask.assignee_id == actor.id)


def can_work_on(actor: User, task: HumanTask) -> bool:
    return task.assignee_id == actor.id or task.group_id in actor.group_ids
