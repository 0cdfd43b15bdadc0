"""The staff work queue: open tasks of the caller's groups and those assigned to the caller,
filtered, searched, sorted and paged.

Fast with a large backlog: the page is chosen on `human_tasks` alone, through the covering
queue index (ix_human_tasks_queue) for the caller's groups and the assignee index for tasks
of other groups assigned to the caller; only the page's rows are joined to their cases, so
the big workflow state of `cases` is never read. Cases are joined while choosing the page
only when the sort (case number) or the search text needs them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, union_all
from sqlalchemy.orm import Session, load_only

from engine.env import Env
from engine.errors import Invalid
from engine.models import Case, HumanTask, ProcessDefinition, User, UserGroup
from engine.ops import sqljson
from engine.ops.db import command
from engine.org import Organisation
from engine.security import audit
from engine.security.access import sees_every_case, visible_cases_clause
from engine.status import TaskState

ASSIGNEE_FILTERS = ("any", "me", "unassigned")
SORTS = ("due", "age", "case")
MAX_PAGE_SIZE = 200
MAX_QUERY = 200


@dataclass(frozen=True)
class QueueItem:
    """One row of the queue page: the task and what the page shows of its case."""

    id: str
    case_id: str
    case_number: str
    case_summary: str
    process_key: str
    step: str
    name: str
    group_id: str | None
    assignee_id: int | None
    assignee_name: str | None
    assignee_display: str | None
    created_at: datetime
    due_at: datetime | None

    def overdue(self, now: datetime) -> bool:
        return self.due_at is not None and self.due_at < now


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _sources(actor: User | _Reader, *, process: str | None, step: str | None, group: str | None, assignee: str,
             overdue: bool, q: str | None, sort: str, now: datetime, org: Organisation | None = None
             ) -> list[Select[Any]]:
    """The queue as disjoint parts that each use an index: the open tasks of the actor's groups, and
    the open tasks of other groups assigned to the actor. Together they are exactly
    `engine.security.access.task_queue_clause` (checked by the tests)."""
    groups = actor.group_ids
    # The row key (free: every SQLite index holds the rowid) lets a statement built on the page
    # join its rows back to human_tasks without a second lookup by the text id.
    columns = [HumanTask.id, HumanTask.due_at, HumanTask.created_at, sqljson.row_key(HumanTask).label("key")]
    if sort == "case":
        columns.append(Case.number)
    parts = []
    if groups:
        parts.append(select(*columns).where(HumanTask.state == TaskState.OPEN, HumanTask.group_id.in_(groups)))
    # `state || ''`: compared so that no index can use it, which leaves the assignee index (a few rows)
    # to SQLite's planner rather than a scan of every open task through the queue index.
    parts.append(select(*columns).where(HumanTask.state.op("||")("") == TaskState.OPEN,
                                        HumanTask.assignee_id == actor.id,
                                        or_(HumanTask.group_id.is_(None), HumanTask.group_id.not_in(groups))
                                        if groups else HumanTask.id.is_not(None)))
    out = []
    for stmt in parts:
        if sort == "case":
            stmt = stmt.join(Case, Case.id == HumanTask.case_id)
        if process:
            stmt = stmt.where(HumanTask.process_key == process)
        if step:
            stmt = stmt.where(HumanTask.step == step)
        if group:
            stmt = stmt.where(HumanTask.group_id == group)
        if assignee == "me":
            stmt = stmt.where(HumanTask.assignee_id == actor.id)
        elif assignee == "unassigned":
            stmt = stmt.where(HumanTask.assignee_id.is_(None))
        if overdue:
            stmt = stmt.where(HumanTask.due_at.is_not(None), HumanTask.due_at < now)
        if q:
            pattern = _like(q)
            # A summary may be matched only where the actor may read it: searching must not
            # reveal what a case the actor cannot see is about.
            summary = Case.summary.ilike(pattern, escape="\\")
            if org is not None and not sees_every_case(actor, org):
                summary = and_(summary, visible_cases_clause(actor, org))
            stmt = stmt.where(HumanTask.case_id.in_(select(Case.id).where(
                or_(Case.number.ilike(pattern, escape="\\"), summary))))
        out.append(stmt)
    return out


def sort_order(columns: Any, sort: str = "due") -> list[Any]:
    """The ORDER BY of the queue's `sort` over `columns` (a table's or a subquery's): a total order,
    so the rows of a page read in it come out as the page statement chose them."""
    if sort == "age":  # oldest first
        return [columns.created_at, columns.id]
    if sort == "case":
        return [columns.number, columns.created_at, columns.id]
    # due date first; tasks without one after those with one (the same on every backend)
    return [columns.due_at.is_(None), columns.due_at, columns.created_at, columns.id]


def _by_due(parts: list[Select[Any]], actor: User | _Reader, first: int) -> list[Select[Any]]:
    """The parts for the default sort (due date), each cut to its `first` rows in the queue's order.

    A group's open tasks with a due date come out of the queue index (state, group_id, due_at,
    created_at, id) already in that order, as do those without one (created_at, id); so each
    (group, has a due date) part is read for `first` index entries only, and the page is chosen
    from those few rows, not by sorting every open task of the actor's groups. The first page costs
    the same with 100 or 100,000 open tasks; a page deep in the queue costs its depth."""
    groups = actor.group_ids
    out = []
    for n, stmt in enumerate(parts):
        if n > 0 or not groups:
            # The tasks of other groups assigned to the actor: a few, all read from the assignee's
            # covering index and sorted. (Split by due date, the part without one would be chosen
            # through the due-date index: every open task without a due date, each looked up.)
            out.append(select(stmt.order_by(HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.created_at,
                                            HumanTask.id).limit(first).subquery()))
            continue
        for one in [stmt.where(HumanTask.group_id == g) for g in groups]:
            for due in (True, False):
                if due:
                    cut = one.where(HumanTask.due_at.is_not(None)).order_by(
                        HumanTask.due_at, HumanTask.created_at, HumanTask.id)
                else:
                    cut = one.where(HumanTask.due_at.is_(None)).order_by(HumanTask.created_at, HumanTask.id)
                out.append(select(cut.limit(first).subquery()))
    return out


@dataclass(frozen=True)
class _Reader:
    """What the queue's statements depend on of the actor: a key for the statements' cache."""

    id: int
    group_ids: tuple[str, ...]


def _reusable(actor: User, overdue: bool, q: str | None) -> _Reader | None:
    """The actor as a cache key when the statement is the same for every request with the same
    filters (not with the time of `overdue`, nor with a search text, whose visibility clause
    depends on the organisation): building one costs a few milliseconds of every queue request."""
    return None if overdue or q else _Reader(actor.id, tuple(actor.group_ids))


@functools.lru_cache(maxsize=512)
def _cached_page(reader: _Reader, process: str | None, step: str | None, group: str | None, assignee: str,
                 sort: str, limit: int, offset: int) -> Select[Any]:
    return _page_statement(reader, process=process, step=step, group=group, assignee=assignee, sort=sort,
                           limit=limit, offset=offset)


@functools.lru_cache(maxsize=512)
def _cached_count(reader: _Reader, process: str | None, step: str | None, group: str | None, assignee: str,
                  at_most: int | None) -> Select[Any]:
    return _count_statement(reader, process=process, step=step, group=group, assignee=assignee, at_most=at_most)


def page_statement(actor: User, *, process: str | None = None, step: str | None = None, group: str | None = None,
                   assignee: str = "any", overdue: bool = False, q: str | None = None, sort: str = "due",
                   limit: int = 50, offset: int = 0, now: datetime | None = None,
                   org: Organisation | None = None) -> Select[Any]:
    """The SELECT of the ids of `limit` tasks of the queue after the first `offset`, in its order,
    each with its row key (`engine.ops.sqljson.row_key`) as a second column."""
    q = (q or "").strip() or None
    reader = _reusable(actor, overdue, q)
    if reader is not None:
        return _cached_page(reader, process, step, group, assignee, sort, limit, offset)
    return _page_statement(actor, process=process, step=step, group=group, assignee=assignee, overdue=overdue, q=q,
                           sort=sort, limit=limit, offset=offset, now=now, org=org)


def _page_statement(actor: Any, *, process: str | None = None, step: str | None = None, group: str | None = None,
                    assignee: str = "any", overdue: bool = False, q: str | None = None, sort: str = "due",
                    limit: int = 50, offset: int = 0, now: datetime | None = None,
                    org: Organisation | None = None) -> Select[Any]:
    parts = _sources(actor, process=process, step=step, group=group, assignee=assignee, overdue=overdue, q=q,
                     sort=sort, now=now, org=org)
    if sort == "due":
        parts = _by_due(parts, actor, offset + limit)
    tasks = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("queue")
    return select(tasks.c.id, tasks.c.key).order_by(*sort_order(tasks.c, sort)).limit(limit).offset(offset)


def queue_statement(actor: User, *, process: str | None = None, step: str | None = None, group: str | None = None,
                    assignee: str = "any", overdue: bool = False, q: str | None = None, sort: str = "due",
                    page: int = 1, page_size: int = 50, now: datetime,
                    org: Organisation | None = None) -> Select[Any]:
    """The SELECT of one page of task ids (exposed so tests can read its query plan)."""
    return page_statement(actor, process=process, step=step, group=group, assignee=assignee, overdue=overdue, q=q,
                          sort=sort, limit=page_size, offset=(page - 1) * page_size, now=now, org=org)


def count_statement(actor: User, *, process: str | None = None, step: str | None = None, group: str | None = None,
                    assignee: str = "any", overdue: bool = False, q: str | None = None, now: datetime,
                    org: Organisation | None = None, at_most: int | None = None) -> Select[Any]:
    """The SELECT of the number of tasks matching the filters; with `at_most`, of that number but
    no more than `at_most`: the count then stops after reading `at_most` index entries, where an
    exact count of a queue with 100,000 tasks reads them all on every request."""
    q = (q or "").strip() or None
    reader = _reusable(actor, overdue, q)
    if reader is not None:
        return _cached_count(reader, process, step, group, assignee, at_most)
    return _count_statement(actor, process=process, step=step, group=group, assignee=assignee, overdue=overdue,
                            q=q, now=now, org=org, at_most=at_most)


def _count_statement(actor: Any, *, process: str | None = None, step: str | None = None, group: str | None = None,
                     assignee: str = "any", overdue: bool = False, q: str | None = None, now: datetime | None = None,
                     org: Organisation | None = None, at_most: int | None = None) -> Select[Any]:
    parts = _sources(actor, process=process, step=step, group=group, assignee=assignee, overdue=overdue, q=q,
                     sort="due", now=now, org=org)
    if at_most is not None:
        ids = [p.with_only_columns(HumanTask.id) for p in parts]
        matches = (ids[0] if len(ids) == 1 else union_all(*ids)).limit(at_most).subquery("matches")
        return select(func.count()).select_from(matches)
    counts = [p.with_only_columns(func.count()).scalar_subquery() for p in parts]
    total = counts[0]
    for c in counts[1:]:
        total = total + c
    return select(total)


def _check(assignee: str, sort: str, page: int, page_size: int, q: str | None) -> None:
    if assignee not in ASSIGNEE_FILTERS:
        raise Invalid(f"assignee must be one of {', '.join(ASSIGNEE_FILTERS)}", {"assignee": "unknown filter"})
    if sort not in SORTS:
        raise Invalid(f"sort must be one of {', '.join(SORTS)}", {"sort": "unknown sort"})
    if not isinstance(page, int) or page < 1:
        raise Invalid("page must be 1 or more", {"page": "must be >= 1"})
    if not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise Invalid(f"page_size must be 1..{MAX_PAGE_SIZE}", {"page_size": "out of range"})
    if q is not None and len(q) > MAX_QUERY:
        raise Invalid("search text is too long", {"q": f"at most {MAX_QUERY} characters"})


def search_queue(session: Session, actor: User, *, process: str | None = None, step: str | None = None,
                 group: str | None = None, assignee: str = "any", overdue: bool = False, q: str | None = None,
                 sort: str = "due", page: int = 1, page_size: int = 50,
                 now: datetime, org: Organisation | None = None, count_ahead: int | None = None
                 ) -> tuple[list[QueueItem], int]:
    """One page of the caller's queue and the number of tasks matching the filters.

    assignee: "me" (assigned to the caller), "unassigned", or "any". sort: "due" (due date,
    default), "age" (oldest first) or "case" (case number). `q` matches the case number or
    the case summary (substring, case-insensitive). With `count_ahead`, the number is counted
    only up to `count_ahead` tasks past the page's first (a total over that is answered as that
    bound plus one, "more than"): the count then costs the page's depth, not the queue's size.
    """
    _check(assignee, sort, page, page_size, q)
    q = (q or "").strip() or None
    common = dict(process=process or None, step=step or None, group=group or None, assignee=assignee,
                  overdue=overdue, q=q, now=now, org=org)
    at_most = None if count_ahead is None else (page - 1) * page_size + count_ahead + 1
    total = session.scalar(count_statement(actor, at_most=at_most, **common)) or 0
    if total == 0:
        return [], 0
    ids = list(session.scalars(queue_statement(actor, sort=sort, page=page, page_size=page_size, **common)))
    if not ids:
        return [], total
    rows = session.execute(
        select(HumanTask.id, HumanTask.case_id, Case.number, Case.summary, HumanTask.process_key, HumanTask.step,
               HumanTask.name, HumanTask.group_id, HumanTask.assignee_id, User.name, User.display_name,
               HumanTask.created_at, HumanTask.due_at)
        .join(Case, Case.id == HumanTask.case_id)
        .outerjoin(User, User.id == HumanTask.assignee_id)
        .where(HumanTask.id.in_(ids))).all()
    by_id = {r[0]: QueueItem(*r) for r in rows}
    return [by_id[i] for i in ids if i in by_id], total


@command
def read_queue(session: Session, env: Env, actor: User, *, now: datetime, **filters: Any
               ) -> tuple[list[QueueItem], int]:
    """The queue page as a staff member sees it: summaries only of cases the actor may see
    (others show the case number and step alone), and the read of those summaries audited."""
    items, total = search_queue(session, actor, now=now, org=env.org, **filters)
    case_ids = {i.case_id for i in items}
    visible = set(session.scalars(select(Case.id).where(Case.id.in_(case_ids),
                                                        visible_cases_clause(actor, env.org)))) if case_ids else set()
    items = [i if i.case_id in visible else replace(i, case_summary="") for i in items]
    shown = sorted({i.case_number for i in items if i.case_id in visible and i.case_summary})
    if shown:
        audit.record(session, actor, audit.Action.QUEUE_READ, now, detail={"cases": shown})
    session.commit()
    return items, total


def group_members(session: Session, group_ids: list[str]) -> dict[str, list[User]]:
    """Active users of each group (for a supervisor's "assign to" choice), by display name."""
    out: dict[str, list[User]] = {g: [] for g in group_ids}
    if not group_ids:
        return out
    rows = session.execute(select(UserGroup.group_id, User).join(User, User.id == UserGroup.user_id)
                           .where(UserGroup.group_id.in_(group_ids), User.active.is_(True))
                           .order_by(User.display_name, User.name))
    for group_id, user in rows:
        out[group_id].append(user)
    return out


def process_choices(session: Session, env: Env) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(process key, process name, [(step id, step name)]) of the newest version of each process,
    for the queue's filters."""
    latest = (select(ProcessDefinition.process_key, func.max(ProcessDefinition.version).label("v"))
              .group_by(ProcessDefinition.process_key).subquery())
    columns = (ProcessDefinition.id, ProcessDefinition.process_key, ProcessDefinition.version, ProcessDefinition.name)
    rows = session.scalars(select(ProcessDefinition).options(load_only(*columns)).join(
        latest, (latest.c.process_key == ProcessDefinition.process_key) & (latest.c.v == ProcessDefinition.version))
        .order_by(ProcessDefinition.process_key.desc()))
    out = []
    for row in rows:
        defn = env.specs.get(row)  # cached: the bundle is read only on a miss
        out.append((row.process_key, row.name, [(s.step, s.name) for s in defn.steps.values()]))
    return out


def open_task_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.state == TaskState.OPEN)) or 0
