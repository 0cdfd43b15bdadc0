"""The load of each user task of a process, for the heatmap on its diagram.

Per step: `open` (open tasks there now), `stuck` (those of them the stuck report names for the
task, overdue, unassigned or monitoring overdue, or whose case is in error or idle), and over
the chosen period [from, to): `entered` (tasks opened there), and the median and 90th
percentile of the hours a task spent there, over the tasks completed there in the period
(opened → completed; linear interpolation between ranks, as numpy's default; None when no
task was completed). One version of the process, or all its versions together by element id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session, aliased, load_only

from engine.env import Env
from engine.errors import Invalid
from engine.models import Case, HumanTask, ProcessDefinition, User
from engine.reports import parse_instant, require_reader
from engine.security.access import visible_cases_bulk_clause
from engine.settings import load_stuck_thresholds
from engine.status import CaseStatus, TaskState
from engine.workflow.limits import check_int

# An alias: the visibility clause has its own subquery over human_tasks, which must not be
# correlated with the tasks counted here.
Task = aliased(HumanTask, name="task")

DEFAULT_PERIOD = timedelta(days=30)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class StepLoad:
    step: str
    name: str
    open: int
    stuck: int
    median_hours: float | None
    p90_hours: float | None
    entered: int


@dataclass(frozen=True)
class Heatmap:
    process: str
    version: int | None
    versions: list[int]
    start: datetime
    end: datetime
    steps: list[StepLoad]
    bpmn_xml: str


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def heatmap(session: Session, env: Env, actor: User, now: datetime, process: Any, version: Any = None,
            start: Any = None, end: Any = None) -> Heatmap:
    require_reader(actor)
    if not isinstance(process, str) or not process:
        raise Invalid("process を指定してください / process is required", {"process": "required"})
    columns = (ProcessDefinition.id, ProcessDefinition.process_key, ProcessDefinition.version)
    definitions = list(session.scalars(select(ProcessDefinition).options(load_only(*columns))
                                       .where(ProcessDefinition.process_key == process)
                                       .order_by(ProcessDefinition.version.desc())))
    if not definitions:
        raise Invalid(f"プロセス {process!r} はありません / unknown process {process!r}", {"process": "unknown process"})
    if version is not None and version != "":
        if isinstance(version, str) and version.isdigit():
            version = int(version)
        check_int(version, "version", 1, 1_000_000)
        chosen = [d for d in definitions if d.version == version]
        if not chosen:
            raise Invalid(f"{process} に版 {version} はありません / {process} has no version {version}",
                          {"version": "no such version"})
    else:
        version, chosen = None, definitions
    # The period is [from, to); by default it ends just after now, so what happened this instant counts.
    end_at = parse_instant(end, "to", end_of_day=True) or now + timedelta(microseconds=1)
    start_at = parse_instant(start, "from") or end_at - DEFAULT_PERIOD
    if start_at >= end_at:
        raise Invalid("from は to より前の日時です / from must be before to", {"from": "must be before to"})

    # Steps of the newest chosen version first, then those only older versions have.
    names: dict[str, str] = {}
    monitoring: set[str] = set()
    for d in chosen:
        for info in env.specs.get(d).steps.values():
            names.setdefault(info.step, info.name)
            if info.report_as == "monitoring":
                monitoring.add(info.step)

    th = load_stuck_thresholds(env.settings.config_dir)
    scope = [Task.process_key == process, visible_cases_bulk_clause(actor, env.org)]
    if version is not None:
        scope.append(Case.definition_id == chosen[0].id)

    stuck_task = or_(
        Task.due_at < now,
        Task.assignee_id.is_(None) & (Task.created_at < now - th.unassigned_days * DAY),
        Task.step.in_(sorted(monitoring)) & (Task.created_at < now - th.monitoring_overdue_days * DAY),
        Case.status == CaseStatus.ERROR,
        (Case.status == CaseStatus.ACTIVE) & (Case.last_event_at < now - th.idle_days * DAY),
    )
    base = select(Task.step).select_from(Task).join(Case, Case.id == Task.case_id).where(*scope)
    open_counts: dict[str, tuple[int, int]] = {
        step: (n, stuck or 0) for step, n, stuck in session.execute(
            base.add_columns(func.count(), func.sum(case((stuck_task, 1), else_=0)))
            .where(Task.state == TaskState.OPEN).group_by(Task.step))}
    entered = dict(session.execute(base.add_columns(func.count()).where(
        Task.created_at >= start_at, Task.created_at < end_at).group_by(Task.step)).all())
    spent: dict[str, list[float]] = {}
    for step, created, completed in session.execute(
            base.add_columns(Task.created_at, Task.completed_at).where(
                Task.state == TaskState.COMPLETED, Task.completed_at >= start_at,
                Task.completed_at < end_at)):
        spent.setdefault(step, []).append((completed - created).total_seconds() / 3600)

    steps = []
    for step, name in names.items():
        open_n, stuck_n = open_counts.get(step, (0, 0))
        hours = spent.get(step, [])
        median, p90 = percentile(hours, 50), percentile(hours, 90)
        steps.append(StepLoad(step, name, open_n, int(stuck_n), round(median, 2) if median is not None else None,
                              round(p90, 2) if p90 is not None else None, entered.get(step, 0)))
    xml = env.specs.get(chosen[0]).bpmn_xml
    return Heatmap(process, version, [d.version for d in definitions], start_at, end_at, steps, xml)
