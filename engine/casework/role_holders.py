"""The roles groups hold in cases (支援会議の役割分担) and their reports at each monitoring.

A support meeting's `case.roles` rows make each named group a role holder of the case (a
`CaseMember` with its `role`, engine.casework.writes.set_roles). Each monitoring round the diagram asks
every role holder for a report (a task of a step marked `reportAs: role_report`, in the holder's
own queue); the secretariat's monitoring task (`reportAs: monitoring`) lists which reports came in
and which are still awaited, and may be decided without them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.clock import utcnow
from engine.env import Env
from engine.models import Case, CaseEvent, CaseMember, HumanTask, Timer, User
from engine.ops.db import command
from engine.security import audit
from engine.status import EventKind, TaskState, TimerStatus

MAX_LISTED = 500


@dataclass
class HeldRole:
    """One role a group of the reader holds in one case."""

    case_id: str
    case_number: str
    process_key: str
    status: str
    summary: str
    group_id: str
    role: str
    since: datetime
    # where the case is now: its open steps' names, else the timers it waits for
    current_steps: list[str] = field(default_factory=list)
    # the holder's open report of this round, if one is asked for
    report_task_id: str | None = None
    report_due_at: datetime | None = None


def _report_steps(env: Env, case: Case) -> set[str]:
    return {s.step for s in env.specs.for_case(case).steps.values() if s.report_as == "role_report"}


@command
def held_roles(session: Session, env: Env, actor: User, now: datetime | None = None) -> list[HeldRole]:
    """The roles the actor's groups hold, in the cases still open first, newest role first.
    Listing their summaries is an audited read, as for any case list."""
    groups = actor.group_ids
    if not groups:
        return []
    rows = session.execute(
        select(CaseMember, Case).join(Case, Case.id == CaseMember.case_id)
        .where(CaseMember.group_id.in_(groups), CaseMember.role.is_not(None))
        .order_by(CaseMember.since.desc(), Case.number.desc()).limit(MAX_LISTED)).all()
    case_ids = list({case.id for _, case in rows})
    if not case_ids:
        session.commit()
        return []
    open_tasks: dict[str, list[HumanTask]] = {}
    for task in session.scalars(select(HumanTask).where(HumanTask.case_id.in_(case_ids),
                                                         HumanTask.state == TaskState.OPEN)
                                .order_by(HumanTask.created_at, HumanTask.id)):
        open_tasks.setdefault(task.case_id, []).append(task)
    waiting: dict[str, list[str]] = {}
    # Soonest first, sorted here: ordered by due_at, the statement would be planned on
    # ix_timers_due, every pending timer of every case, rather than these cases' few.
    timers = session.scalars(select(Timer).where(Timer.case_id.in_(case_ids), Timer.status == TimerStatus.PENDING))
    for timer in sorted(timers, key=lambda t: (t.due_at, t.id)):
        waiting.setdefault(timer.case_id, []).append(timer.step_name or timer.step)
    out = []
    for member, case in rows:
        reports = _report_steps(env, case)
        tasks = open_tasks.get(case.id, [])
        mine = next((t for t in tasks if t.step in reports and t.group_id == member.group_id), None)
        steps = list(dict.fromkeys(t.name for t in tasks if t.step not in reports)) or waiting.get(case.id, [])
        out.append(HeldRole(case.id, case.number, case.process_key, case.status, case.summary, member.group_id,
                            member.role or "", member.since, steps, mine.id if mine else None,
                            mine.due_at if mine else None))
    out.sort(key=lambda r: (r.status != "active", r.report_task_id is None))
    if out:
        audit.record(session, actor, audit.Action.CASE_LIST, now or utcnow(),
                     detail={"cases": list(dict.fromkeys(r.case_number for r in out)), "via": "roles"})
    session.commit()
    return out


@dataclass
class RoundReport:
    """One role holder's report in a monitoring round: received (with its answers) or awaited."""

    group_id: str
    role: str | None
    task_id: str
    state: str
    due_at: datetime | None
    completed_at: datetime | None = None
    data: dict[str, Any] | None = None


def round_reports(session: Session, env: Env, task: HumanTask) -> list[RoundReport] | None:
    """The role holders' reports of the monitoring round `task` decides (None when `task` is no
    monitoring): those asked for since the round began, awaited ones first."""
    defn = env.specs.for_case(task.case)
    info = defn.steps.get(task.step)
    if info is None or info.report_as != "monitoring":
        return None
    steps = _report_steps(env, task.case)
    if not steps:
        return []
    rows = list(session.scalars(select(HumanTask).where(HumanTask.case_id == task.case_id, HumanTask.step.in_(steps),
                                                        HumanTask.created_at >= task.created_at)
                                .order_by(HumanTask.created_at, HumanTask.id)))
    roles = {m.group_id: m.role for m in session.scalars(select(CaseMember).where(CaseMember.case_id == task.case_id))}
    answers = {e.task_id: e.data for e in session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == task.case_id, CaseEvent.kind == EventKind.TASK_COMPLETED,
                                CaseEvent.task_id.in_([r.id for r in rows])))} if rows else {}
    out = [RoundReport(r.group_id or "", roles.get(r.group_id or ""), r.id, r.state, r.due_at, r.completed_at,
                       answers.get(r.id)) for r in rows]
    out.sort(key=lambda r: r.state != TaskState.OPEN)
    return out


def role_of(session: Session, case_id: str, group_id: str | None) -> str | None:
    """The role `group_id` holds in the case, if any."""
    if group_id is None:
        return None
    member = session.get(CaseMember, (case_id, group_id))
    return member.role if member is not None else None
