"""Work per group and per worker: open tasks, of them overdue and claimed, and tasks
completed this month (Japan's calendar month). A group's row counts the tasks its queue
holds; a worker's row counts the open tasks they hold (so `claimed` equals `open` there) and
the tasks they completed. Rows with nothing to count are left out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, aliased

from engine.env import Env
from engine.models import Case, HumanTask, User
from engine.reports import month_start, require_reader
from engine.security.access import visible_cases_bulk_clause
from engine.status import TaskState

# An alias: the visibility clause has its own subquery over human_tasks, which must not be
# correlated with the tasks counted here.
Task = aliased(HumanTask, name="task")


@dataclass
class Load:
    key: str
    name: str
    open: int = 0
    overdue: int = 0
    claimed: int = 0
    completed_this_month: int = 0


def workload(session: Session, env: Env, actor: User, now: datetime) -> dict[str, list[Load]]:
    require_reader(actor)
    visible = visible_cases_bulk_clause(actor, env.org)
    since = month_start(now)
    overdue = func.sum(case((Task.due_at < now, 1), else_=0))
    claimed = func.sum(case((Task.assignee_id.is_not(None), 1), else_=0))

    def tasks(*columns: Any) -> Any:
        return select(*columns).select_from(Task).join(Case, Case.id == Task.case_id).where(visible)

    groups: dict[str, Load] = {}
    users: dict[int, Load] = {}

    def group(gid: str) -> Load:
        info = env.org.group(gid)
        return groups.setdefault(gid, Load(gid, info.name if info else gid))

    for gid, n, late, held in session.execute(tasks(Task.group_id, func.count(), overdue, claimed).where(
            Task.state == TaskState.OPEN, Task.group_id.is_not(None)).group_by(Task.group_id)):
        row = group(gid)
        row.open, row.overdue, row.claimed = n, int(late or 0), int(held or 0)
    for gid, n in session.execute(tasks(Task.group_id, func.count()).where(
            Task.state == TaskState.COMPLETED, Task.completed_at >= since,
            Task.group_id.is_not(None)).group_by(Task.group_id)):
        group(gid).completed_this_month = n
    for uid, n, late in session.execute(tasks(Task.assignee_id, func.count(), overdue).where(
            Task.state == TaskState.OPEN, Task.assignee_id.is_not(None)).group_by(Task.assignee_id)):
        users[uid] = Load("", "", n, int(late or 0), n)
    for uid, n in session.execute(tasks(Task.completed_by_id, func.count()).where(
            Task.state == TaskState.COMPLETED, Task.completed_at >= since,
            Task.completed_by_id.is_not(None)).group_by(Task.completed_by_id)):
        users.setdefault(uid, Load("", "")).completed_this_month = n
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_(users)))} if users else {}
    for uid, row in users.items():
        row.key, row.name = people[uid].name, people[uid].display_name
    return {"groups": sorted(groups.values(), key=lambda r: (-r.open, r.key)),
            "users": sorted(users.values(), key=lambda r: (-r.open, r.key))}
