"""The stuck-case report: every case that stopped moving, once per reason it has.

Reasons (each row names one; the Ns are `config/reports.yaml`, see `StuckThresholds`):

- `overdue`: an open task past its step's time limit (`dueIn`); since its due time.
- `unassigned`: an open task claimed by no one for more than N days; since the task was opened.
- `monitoring_overdue`: an open task of a step marked `reportAs=monitoring` (the record a
  monitoring timer asks for) not done more than N days after the timer fired, which is when the
  task was opened; since then.
- `idle`: an active case with no new history for more than N days; since its last history row.
- `error`: a case in error, at once; since the error (its last history row), `detail` its text.
- `waiting`: an active case waiting for a message or signal for more than N days; since it
  began to wait, `detail` the message's name.

The age of a row is whole days since `since`. The rows come from one UNION ALL of six indexed
selects (no per-case work), so the first page and the counts stay fast with 100,000 cases.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    String,
    Text,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session, aliased, load_only

from engine.env import Env
from engine.errors import Invalid
from engine.models import Case, HumanTask, MessageWait, ProcessDefinition, User
from engine.ops.db import command
from engine.reports import require_reader
from engine.security import audit
from engine.security.access import sees_every_case, visible_cases_bulk_clause
from engine.settings import StuckThresholds, load_stuck_thresholds
from engine.status import CaseStatus, TaskState
from engine.workflow.limits import MAX_INT, check_int

REASONS = ("overdue", "unassigned", "monitoring_overdue", "idle", "error", "waiting")
# Age buckets in whole days: [low, high) (high None: no upper end).
AGE_BUCKETS: dict[str, tuple[int, int | None]] = {"lt7": (0, 7), "7-30": (7, 30), "30-90": (30, 90), "gt90": (90, None)}
# -age: oldest first (the default); age: newest first.
SORTS = ("-age", "age")
DEFAULT_LIMIT, MAX_LIMIT = 50, 500
DAY = timedelta(days=1)

REASON_LABELS: dict[str, tuple[str, str]] = {
    "overdue": ("期限超過", "Overdue"),
    "unassigned": ("担当者未定", "Unassigned"),
    "monitoring_overdue": ("モニタリング未実施", "Monitoring overdue"),
    "idle": ("動きなし", "Idle"),
    "error": ("エラー", "Error"),
    "waiting": ("連絡待ち", "Waiting for a message"),
}
AGE_LABELS: dict[str, tuple[str, str]] = {
    "lt7": ("7日未満", "Under 7 days"), "7-30": ("7〜30日", "7–30 days"),
    "30-90": ("30〜90日", "30–90 days"), "gt90": ("90日以上", "90 days or more"),
}


@dataclass(frozen=True)
class Filters:
    process: str | None = None
    step: str | None = None
    group: str | None = None
    reason: str | None = None
    min_age_days: int | None = None
    age: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class Row:
    case_id: str
    case_number: str
    process: str
    version: int | None
    step: str | None
    step_name: str | None
    group: str | None
    assignee: str | None
    reason: str
    since: datetime
    age_days: int
    detail: str | None


@dataclass(frozen=True)
class Page:
    items: list[Row]
    total: int


def _text(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 200:
        raise Invalid(f"{field} は 200 文字までの文字列です / {field} must be text of at most 200 characters",
                      {field: "text of at most 200 characters"})
    return value


def check_filters(process: Any = None, step: Any = None, group: Any = None, reason: Any = None,
                  min_age_days: Any = None, age: Any = None) -> Filters:
    """The filters, or Invalid naming the first bad one."""
    reason = _text(reason, "reason")
    if reason is not None and reason not in REASONS:
        raise Invalid(f"reason は {', '.join(REASONS)} のいずれかです / reason must be one of {', '.join(REASONS)}",
                      {"reason": f"one of {', '.join(REASONS)}"})
    age = _text(age, "age")
    if age is not None and age not in AGE_BUCKETS:
        raise Invalid(f"age は {', '.join(AGE_BUCKETS)} のいずれかです / age must be one of {', '.join(AGE_BUCKETS)}",
                      {"age": f"one of {', '.join(AGE_BUCKETS)}"})
    if min_age_days is not None:
        check_int(min_age_days, "min_age_days", 0, 100_000)
    return Filters(_text(process, "process"), _text(step, "step"), _text(group, "group"), reason, min_age_days, age)


def _selects(env: Env, actor: User, now: datetime, th: StuckThresholds, f: Filters,
             monitoring: set[tuple[str, str]], counting: bool = False, edges: dict[str, Any] | None = None,
             oldest_first: bool = True) -> list[Select]:
    """One select per wanted reason. `counting`: only what counts need (case, reason, since),
    and for a reader who sees every case the task reasons read the task index alone. `edges`:
    per reason the `since` a page reaches (oldest first: up to it, in place of the reason's own
    threshold, so the index range is that short one; newest first: from it)."""

    def bound(reason: str, since: Any, threshold: Any) -> list[Any]:
        if edges is None:
            return [threshold] if threshold is not None else []
        if oldest_first:
            return [since <= edges[reason]]
        return [since >= edges[reason]] + ([threshold] if threshold is not None else [])

    wide = sees_every_case(actor, env.org)
    visible = visible_cases_bulk_clause(actor, env.org)
    # An alias: the visibility clause has its own subquery over human_tasks, which must not be
    # correlated with the task a row is about.
    Task = aliased(HumanTask, name="task")  # noqa: N806
    no_text, no_step, no_user = cast(None, Text), cast(None, String(100)), cast(None, Integer)

    def task_reason(reason: str, since: Any, *where: Any) -> Select:
        label = literal(reason, String(32)).label("reason")
        if counting:
            stmt = select(Task.case_id.label("case_id"), label, since.label("since")).select_from(Task)
            if not wide:
                stmt = stmt.join(Case, Case.id == Task.case_id)
        else:
            stmt = (select(Case.id.label("case_id"), Case.number.label("case_number"), Case.process_key.label("process"),
                           Case.definition_id.label("definition_id"), Task.step.label("step"),
                           Task.name.label("step_name"), Task.group_id.label("group_id"),
                           Task.assignee_id.label("assignee_id"), label, since.label("since"),
                           no_text.label("detail"))
                    .select_from(Task).join(Case, Case.id == Task.case_id))
        return stmt.where(Task.state == TaskState.OPEN, *where,
                          *_common(Task.process_key, Task.step, Task.group_id, since, check=not (counting and wide)))

    def case_reason(reason: str, since: Any, detail: Any, *where: Any, step: Any = None, step_name: Any = None,
                    join: Any = None) -> Select:
        label = literal(reason, String(32)).label("reason")
        if counting and join is not None and wide and not f.group:  # the wait row alone answers
            return select(join.case_id.label("case_id"), label, since.label("since")).where(
                *where, *_common(join.process_key, step, None, since, check=False))
        if counting:
            stmt = select(Case.id.label("case_id"), label, since.label("since"))
        else:
            stmt = select(Case.id.label("case_id"), Case.number.label("case_number"), Case.process_key.label("process"),
                          Case.definition_id.label("definition_id"), (step if step is not None else no_step).label("step"),
                          (step_name if step_name is not None else cast(None, String(200))).label("step_name"),
                          Case.referring_group_id.label("group_id"), no_user.label("assignee_id"), label,
                          since.label("since"), detail.label("detail"))
        stmt = stmt.select_from(join).join(Case, Case.id == join.case_id) if join is not None else stmt
        return stmt.where(*where, *_common(Case.process_key, step, Case.referring_group_id, since))

    def _common(process_col: Any, step_col: Any, group_col: Any, since: Any, check: bool = True) -> list[Any]:
        out: list[Any] = [visible] if check else []
        if f.process:
            out.append(process_col == f.process)
        if f.step:
            out.append(step_col == f.step if step_col is not None else literal(False))
        if f.group:
            out.append(group_col == f.group)
        if f.min_age_days is not None:
            out.append(since <= now - f.min_age_days * DAY)
        if f.age:
            low, high = AGE_BUCKETS[f.age]
            if low:
                out.append(since <= now - low * DAY)
            if high is not None:
                out.append(since > now - high * DAY)
        return out

    wanted = [f.reason] if f.reason else list(REASONS)
    out: list[Select] = []
    for reason in wanted:
        if reason == "overdue":
            out.append(task_reason(reason, Task.due_at, *bound(reason, Task.due_at, Task.due_at < now)))
        elif reason == "unassigned":
            out.append(task_reason(reason, Task.created_at, Task.assignee_id.is_(None),
                                   *bound(reason, Task.created_at, Task.created_at < now - th.unassigned_days * DAY)))
        elif reason == "monitoring_overdue" and monitoring:
            out.append(task_reason(reason, Task.created_at,
                                   or_(*[(Task.process_key == p) & (Task.step == st) for p, st in sorted(monitoring)]),
                                   *bound(reason, Task.created_at,
                                          Task.created_at < now - th.monitoring_overdue_days * DAY)))
        elif reason == "idle":
            out.append(case_reason(reason, Case.last_event_at, no_text, Case.status == CaseStatus.ACTIVE,
                                   *bound(reason, Case.last_event_at, Case.last_event_at < now - th.idle_days * DAY)))
        elif reason == "error":
            # Since the error: the history row it wrote is the case's last (every case has history
            # from its start, so last_event_at is set).
            out.append(case_reason(reason, Case.last_event_at, Case.error, Case.status == CaseStatus.ERROR,
                                   *bound(reason, Case.last_event_at, None)))
        elif reason == "waiting":
            # A wait row exists only while the workflow waits (also in a case that failed meanwhile).
            out.append(case_reason(reason, MessageWait.since, cast(MessageWait.name, Text),
                                   *bound(reason, MessageWait.since, MessageWait.since < now - th.waiting_days * DAY),
                                   step=MessageWait.step, step_name=MessageWait.step_name, join=MessageWait))
    return out


def monitoring_steps(session: Session, env: Env) -> set[tuple[str, str]]:
    """(process, step) of every user task some deployed version marks `reportAs=monitoring`."""
    out: set[tuple[str, str]] = set()
    # Only the columns the spec cache is keyed on: the bundle is read on a cache miss alone.
    columns = (ProcessDefinition.id, ProcessDefinition.process_key, ProcessDefinition.version)
    for definition in session.scalars(select(ProcessDefinition).options(load_only(*columns))):
        loaded = env.specs.get(definition)
        out.update((definition.process_key, s.step) for s in loaded.steps.values() if s.report_as == "monitoring")
    return out


def _arms(session: Session, env: Env, actor: User, now: datetime, f: Filters, counting: bool = False,
          edges: dict[str, Any] | None = None, oldest_first: bool = True) -> list[Select]:
    th = load_stuck_thresholds(env.settings.config_dir)
    return _selects(env, actor, now, th, f, monitoring_steps(session, env), counting, edges, oldest_first)


def _union(session: Session, env: Env, actor: User, now: datetime, f: Filters) -> Any:
    """Every row's case, reason and since (what the counts need)."""
    arms = _arms(session, env, actor, now, f, counting=True)
    if not arms:
        return None
    return (arms[0] if len(arms) == 1 else union_all(*arms)).cte("stuck").prefix_with("MATERIALIZED")


def query(session: Session, env: Env, actor: User, now: datetime, filters: Filters, *, sort: Any = "-age",
          limit: Any = DEFAULT_LIMIT, offset: Any = 0) -> Page:
    """One page of rows and the number of all rows matching `filters` (no audit record)."""
    require_reader(actor)
    if sort is None or sort == "":
        sort = "-age"
    if sort not in SORTS:
        raise Invalid("sort は -age（古い順）か age（新しい順）です / sort must be -age (oldest first) or age (newest first)",
                      {"sort": "-age or age"})
    check_int(limit, "limit", 1, MAX_LIMIT)
    check_int(offset, "offset", 0, MAX_INT)
    th = load_stuck_thresholds(env.settings.config_dir)
    monitoring = monitoring_steps(session, env)
    counting = _selects(env, actor, now, th, filters, monitoring, counting=True)
    if not counting:
        return Page([], 0)
    if sees_every_case(actor, env.org):
        # A count per reason: SQLite counts each from its index alone, where a count over their
        # union would first copy every row into a temporary table.
        total = sum(session.scalar(select(func.count()).select_from(arm.subquery())) or 0 for arm in counting)
    else:
        # One count over the union: each row is tested against the reader's visibility sets anyway,
        # and one statement reads those sets once where six would read them six times (measured).
        total = session.scalar(select(func.count()).select_from(
            (counting[0] if len(counting) == 1 else union_all(*counting)).subquery())) or 0
    # Each reason cut on its own index to the rows up to its (offset+limit)-th `since` (ties at
    # that edge included; the edge found from the index alone), so a page never sorts every
    # stuck row; the page is then taken, in full order, from those few.
    oldest_first = sort == "-age"
    edges: dict[str, Any] = {}
    for arm in counting:
        since = arm.selected_columns.since
        reason = arm.selected_columns.reason.element.value
        edges[reason] = select((func.max if oldest_first else func.min)(literal_column("since"))).select_from(
            arm.order_by(since.asc() if oldest_first else since.desc()).limit(offset + limit).subquery()
        ).scalar_subquery()
    bounded = _selects(env, actor, now, th, filters, monitoring, edges=edges, oldest_first=oldest_first)
    u = (bounded[0] if len(bounded) == 1 else union_all(*bounded)).subquery("stuck")

    def order(columns: Any) -> list[Any]:
        return [columns.since.asc() if oldest_first else columns.since.desc(), columns.case_number, columns.reason]

    rows = session.execute(select(u).order_by(*order(u.c)).limit(limit).offset(offset)).all()
    return Page(_rows(session, rows, now), total)


def _rows(session: Session, rows: list[Any], now: datetime) -> list[Row]:
    users = {u.id: u.name for u in session.scalars(select(User).where(
        User.id.in_({r.assignee_id for r in rows if r.assignee_id is not None})))} if rows else {}
    versions = dict(session.execute(select(ProcessDefinition.id, ProcessDefinition.version).where(
        ProcessDefinition.id.in_({r.definition_id for r in rows}))).all()) if rows else {}
    return [Row(r.case_id, r.case_number, r.process, versions.get(r.definition_id), r.step, r.step_name, r.group_id,
                users.get(r.assignee_id), r.reason, r.since, max(0, (now - r.since) // DAY), r.detail)
            for r in rows]


@command
def stuck_page(session: Session, env: Env, actor: User, now: datetime, filters: Filters, *, sort: Any = "-age",
               limit: Any = DEFAULT_LIMIT, offset: Any = 0) -> Page:
    """A page of the report, its read recorded on the audit trail (which cases were listed)."""
    page = query(session, env, actor, now, filters, sort=sort, limit=limit, offset=offset)
    audit.record(session, actor, audit.Action.REPORT_READ, now,
                 detail={"report": "stuck", "filters": filters.as_dict(), "results": page.total,
                         "cases": list(dict.fromkeys(r.case_number for r in page.items))})
    session.commit()
    return page


@command
def stuck_export(session: Session, env: Env, actor: User, now: datetime, filters: Filters,
                 sort: Any = "-age") -> list[Row]:
    """Every row matching `filters`, the export recorded on the audit trail."""
    require_reader(actor)
    rows: list[Row] = []
    while True:
        page = query(session, env, actor, now, filters, sort=sort, limit=MAX_LIMIT, offset=len(rows))
        rows.extend(page.items)
        if len(page.items) < MAX_LIMIT:
            break
    audit.record(session, actor, audit.Action.REPORT_EXPORT, now,
                 detail={"report": "stuck", "filters": filters.as_dict(), "results": len(rows),
                         "cases": list(dict.fromkeys(r.case_number for r in rows))})
    session.commit()
    return rows


def counts(session: Session, env: Env, actor: User, now: datetime) -> dict[str, Any]:
    """The dashboard's counts: rows by reason, rows by age bucket, and the stuck cases."""
    require_reader(actor)
    by_reason = dict.fromkeys(REASONS, 0)
    by_age = dict.fromkeys(AGE_BUCKETS, 0)
    u = _union(session, env, actor, now, Filters())
    if u is None:
        return {"by_reason": by_reason, "by_age": by_age, "rows": 0, "cases": 0}
    bucket = case(*[(u.c.since > now - high * DAY, name) for name, (_low, high) in AGE_BUCKETS.items()
                    if high is not None], else_="gt90")
    # The rows are worked out once (a materialized CTE) for both the counts and the distinct cases:
    # each reason's select, with its visibility probes, runs one time.
    distinct = select(func.count(func.distinct(u.c.case_id))).scalar_subquery()
    cases = 0
    for reason, age, n, all_cases in session.execute(select(u.c.reason, bucket, func.count(), distinct)
                                                     .group_by(u.c.reason, bucket)):
        by_reason[reason] += n
        by_age[age] += n
        cases = all_cases
    return {"by_reason": by_reason, "by_age": by_age, "rows": sum(by_reason.values()), "cases": cases}


CSV_HEADERS = ["案件ID", "案件番号", "プロセス", "版", "工程", "工程名", "担当機関", "担当者", "理由", "理由（表示）",
               "発生日時", "経過日数", "詳細"]


def to_csv(rows: list[Row], group_names: dict[str, str]) -> str:
    """The rows as CSV with Japanese headers, starting with a byte order mark so Excel reads it
    as UTF-8: codes as stored (reason, step) beside the words people read."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(CSV_HEADERS)
    for r in rows:
        writer.writerow([r.case_id, r.case_number, r.process, r.version or "", r.step or "", r.step_name or "",
                         group_names.get(r.group or "", r.group or ""), r.assignee or "", r.reason,
                         REASON_LABELS[r.reason][0], r.since.isoformat(), r.age_days, r.detail or ""])
    return out.getvalue()
