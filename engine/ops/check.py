"""Consistency check: each case's stored workflow state against the rows that mirror it.

For every case the check loads the SpiffWorkflow state and compares it with
- the open task projection (ids, steps, groups, due times),
- the pending timers (task ids, due times),
- the message and signal waits (task ids, message names),
- that an active case waits for something (a task, a timer, a message or a signal),
- the history (one TASK_CREATED per task row, one TASK_COMPLETED per completed task with the
  same actor, one TIMER_FIRED per fired timer),
- the outbox (one event per committed change: task.created, task.completed, timer.fired,
  case.created, case.completed, message.received),
- the case status (completed exactly when the workflow is),
- the case search's index (case_search holds the case's search text, case_search_grams exactly
  its pieces, engine.casework.search).
It reports differences and never repairs them: a difference means a bug or a hand-edited
database, and a person should look at it. Each batch of cases is read in one snapshot
(REPEATABLE READ on PostgreSQL, one read transaction on SQLite), so the check may run
while the system is in use.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.casework import search, writes
from engine.env import Env
from engine.models import (
    Case,
    CaseEvent,
    CaseSearchGram,
    CaseSearchText,
    HumanTask,
    MessageWait,
    OutboxEvent,
    Timer,
)
from engine.status import CaseStatus, EventKind, OutboxKind, TaskState, TimerStatus
from engine.workflow import runtime
from engine.workflow.specs import parse_iso_duration

VERSION_FORMAT = re.compile(r"^[0-9][0-9.]*\+t([0-9]+)$")


@dataclass(frozen=True)
class Problem:
    case_id: str
    case_number: str
    what: str

    def __str__(self) -> str:
        return f"{self.case_number} ({self.case_id}): {self.what}"


@dataclass
class CheckReport:
    cases: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems


@dataclass
class _Rows:
    tasks: list[HumanTask] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    events: list[CaseEvent] = field(default_factory=list)
    outbox: list[OutboxEvent] = field(default_factory=list)
    waits: list[MessageWait] = field(default_factory=list)
    # The case search's index: the text it holds for the case (None: no row) and its pieces.
    search_text: str | None = None
    grams: set[str] = field(default_factory=set)


def _snapshot(session: Session) -> None:
    """Read what follows in one snapshot, so that a change committed meanwhile is seen whole or not at all."""
    if session.in_transaction():
        session.rollback()
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def _rows(session: Session, case_ids: Sequence[str]) -> dict[str, _Rows]:
    out: dict[str, _Rows] = defaultdict(_Rows)
    for row in session.scalars(select(HumanTask).where(HumanTask.case_id.in_(case_ids))):
        out[row.case_id].tasks.append(row)
    for row in session.scalars(select(Timer).where(Timer.case_id.in_(case_ids))):
        out[row.case_id].timers.append(row)
    for row in session.scalars(select(CaseEvent).where(CaseEvent.case_id.in_(case_ids)).order_by(CaseEvent.id)):
        out[row.case_id].events.append(row)
    for row in session.scalars(select(OutboxEvent).where(OutboxEvent.case_id.in_(case_ids))):
        out[row.case_id].outbox.append(row)
    for row in session.scalars(select(MessageWait).where(MessageWait.case_id.in_(case_ids))):
        out[row.case_id].waits.append(row)
    docs = {}
    for row in session.execute(select(CaseSearchText.doc, CaseSearchText.case_id, CaseSearchText.text)
                               .where(CaseSearchText.case_id.in_(case_ids))):
        out[row.case_id].search_text = row.text
        docs[row.doc] = row.case_id
    if docs:
        for gram, doc in session.execute(select(CaseSearchGram.gram, CaseSearchGram.doc)
                                         .where(CaseSearchGram.doc.in_(list(docs)))):
            out[docs[doc]].grams.add(gram)
    return out


def check_case(session: Session, env: Env, case: Case) -> list[Problem]:
    """Every difference between one case's workflow state and its rows (read in the caller's transaction)."""
    return _check(env, case, _rows(session, [case.id])[case.id])


def check_all(session: Session, env: Env, batch: int = 200, case_ids: Iterable[str] | None = None) -> CheckReport:
    """Check every case (or those given), `batch` cases per snapshot. Changes nothing."""
    if case_ids is None:
        _snapshot(session)
        ids = list(session.scalars(select(Case.id).order_by(Case.created_at, Case.id)))
        session.rollback()
    else:
        ids = list(case_ids)
    report = CheckReport()
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        _snapshot(session)
        cases = list(session.scalars(select(Case).where(Case.id.in_(chunk))))
        rows = _rows(session, chunk)
        for case in cases:
            report.problems.extend(_check(env, case, rows[case.id]))
        report.cases += len(cases)
        session.rollback()
    return report


def _check(env: Env, case: Case, rows: _Rows) -> list[Problem]:
    problems: list[Problem] = []

    def report(what: str) -> None:
        problems.append(Problem(case.id, case.number, what))

    _check_history_and_outbox(case, rows, report)
    _check_search_index(case, rows, report)

    match = VERSION_FORMAT.match(case.serializer_version or "")
    if match is None or int(match.group(1)) > runtime.STATE_FORMAT:
        report(f"unknown serializer version {case.serializer_version!r} (this program writes "
               f"{runtime.SERIALIZER_VERSION})")
        return problems
    try:
        defn = env.specs.for_case(case)
        wf = runtime.load(defn, case.state, case.serializer_version)
    except Exception as exc:  # noqa: BLE001 - any failure to load is the finding
        report(f"workflow state does not load: {type(exc).__name__}: {exc}")
        return problems

    # Ready user tasks <-> open task rows.
    ready_tasks = {str(t.id): t for t in runtime.ready_user_tasks(wf)}
    ready = {task_id: t.task_spec.bpmn_id for task_id, t in ready_tasks.items()}
    open_rows = {r.id: r for r in rows.tasks if r.state == TaskState.OPEN}
    for task_id in ready.keys() - open_rows.keys():
        report(f"ready task {ready[task_id]} {task_id} has no open task row")
    for task_id in open_rows.keys() - ready.keys():
        report(f"open task row {open_rows[task_id].step} {task_id} is not a ready task of the workflow")
    for task_id in ready.keys() & open_rows.keys():
        row = open_rows[task_id]
        if row.step != ready[task_id]:
            report(f"open task row {task_id} says step {row.step}, the workflow says {ready[task_id]}")
            continue
        info = defn.steps.get(row.step)
        if info is None:
            report(f"open task row {task_id}: step {row.step} is not a user task of the diagram")
            continue
        group = writes.task_group(env, case, info, ready_tasks[task_id].data)
        if row.group_id != group:
            report(f"open task row {row.step} {task_id} belongs to group {row.group_id}, its lane to {group}")
        due = row.created_at + parse_iso_duration(info.due_in, row.created_at) if info.due_in else None
        if row.due_at != due:
            report(f"open task row {row.step} {task_id} is due {_iso(row.due_at)}, expected {_iso(due)}")

    # Waiting timers <-> pending timer rows.
    waiting = {str(t.id): (t.task_spec.bpmn_id, _parse(due)) for t, due in runtime.waiting_timers(wf)}
    pending = {r.task_id: r for r in rows.timers if r.status == TimerStatus.PENDING}
    for task_id in waiting.keys() - pending.keys():
        report(f"waiting timer {waiting[task_id][0]} {task_id} has no pending timer row")
    for task_id in pending.keys() - waiting.keys():
        report(f"pending timer row {pending[task_id].step} {task_id} is not a waiting timer of the workflow")
    for task_id in waiting.keys() & pending.keys():
        step, due = waiting[task_id]
        if pending[task_id].due_at != due:
            report(f"pending timer row {step} {task_id} is due {_iso(pending[task_id].due_at)}, "
                   f"the workflow says {_iso(due)}")

    # Waiting message and signal catches <-> message_waits rows.
    catches = {str(t.id): (t.task_spec.bpmn_id, name) for t, _kind, name, _ in runtime.waiting_catches(wf)}
    waits = {r.task_id: r for r in rows.waits}
    for task_id in catches.keys() - waits.keys():
        report(f"waiting catch {catches[task_id][0]} {task_id} ({catches[task_id][1]}) has no message_waits row")
    for task_id in waits.keys() - catches.keys():
        report(f"message_waits row {waits[task_id].step} {task_id} is not a waiting catch of the workflow")

    # Case status <-> workflow completion.
    done = wf.is_completed()
    if case.status == CaseStatus.ACTIVE and not done and not (ready or runtime.waiting_events_of(wf)):
        # Judged on the workflow itself (missing rows are reported above): nothing can move it on.
        report("the case is active but waits for nothing: no ready task, timer, message or signal")
    if done and case.status != CaseStatus.COMPLETED:
        report(f"the workflow is complete but the case is {case.status}")
    if not done and case.status == CaseStatus.COMPLETED:
        report("the case is completed but its workflow is not")
    if (case.status == CaseStatus.COMPLETED) != (case.completed_at is not None):
        report(f"case status {case.status} with completed_at {_iso(case.completed_at)}")
    return problems


def _check_search_index(case: Case, rows: _Rows, report: Any) -> None:
    """The search finds the case by what its search text says: the index holds that text, and
    exactly the text's pieces (a missing piece hides the case from a query, a stray one only
    costs a test)."""
    indexed = rows.search_text if rows.search_text is not None else ""
    if indexed != (case.search_text or ""):
        report("the search index holds another text than the case's search text: a search may not find it")
    expected = search.grams(indexed)
    if rows.grams != expected:
        report(f"the search index lacks {len(expected - rows.grams)} and has {len(rows.grams - expected)} "
               "stray pieces of the case's search text")


def _check_history_and_outbox(case: Case, rows: _Rows, report: Any) -> None:
    by_kind: dict[str, list[CaseEvent]] = defaultdict(list)
    for event in rows.events:
        by_kind[event.kind].append(event)
    outbox: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in rows.outbox:
        outbox[event.kind].append(event.payload or {})

    # Task rows <-> history.
    created = Counter(e.task_id for e in by_kind[EventKind.TASK_CREATED])
    completions: dict[str | None, list[CaseEvent]] = defaultdict(list)
    for e in by_kind[EventKind.TASK_COMPLETED]:
        completions[e.task_id].append(e)
    task_ids = {r.id for r in rows.tasks}
    for row in rows.tasks:
        if created[row.id] != 1:
            report(f"task {row.step} {row.id} has {created[row.id]} task_created history rows (expected 1)")
        done = completions.get(row.id, [])
        if row.state == TaskState.COMPLETED:
            if len(done) != 1:
                report(f"completed task {row.step} {row.id} has {len(done)} task_completed history rows (expected 1)")
            elif done[0].actor_id != row.completed_by_id:
                report(f"completed task {row.step} {row.id}: completed by user {row.completed_by_id}, "
                       f"history says user {done[0].actor_id}")
            if row.completed_at is None:
                report(f"completed task {row.step} {row.id} has no completion time")
        elif done:
            report(f"task {row.step} {row.id} is {row.state} but history has {len(done)} completion(s)")
    for task_id in (created.keys() | completions.keys()) - task_ids:
        report(f"history names task {task_id}, which has no task row")

    # Fired timers <-> history.
    fired_history = Counter(e.task_id for e in by_kind[EventKind.TIMER_FIRED])
    timer_ids = {t.task_id for t in rows.timers}
    for timer in rows.timers:
        n = fired_history[timer.task_id]
        if timer.status == TimerStatus.FIRED and n != 1:
            report(f"fired timer {timer.step} {timer.task_id} has {n} timer_fired history rows (expected 1)")
        elif timer.status != TimerStatus.FIRED and n:
            report(f"timer {timer.step} {timer.task_id} is {timer.status} but history says it fired {n} time(s)")
    for task_id in fired_history.keys() - timer_ids:
        report(f"history says timer {task_id} fired, but there is no such timer row")

    # History <-> outbox: one outgoing event per committed change.
    _same(report, "task.created", Counter(e.task_id for e in by_kind[EventKind.TASK_CREATED]),
          Counter(p.get("task_id") for p in outbox[OutboxKind.TASK_CREATED]))
    _same(report, "task.completed", Counter(e.task_id for e in by_kind[EventKind.TASK_COMPLETED]),
          Counter(p.get("task_id") for p in outbox[OutboxKind.TASK_COMPLETED]))
    # timer.fired events name the step and due time, not the task.
    _same(report, "timer.fired",
          Counter((e.step, _iso(_parse((e.data or {}).get("due_at")))) for e in by_kind[EventKind.TIMER_FIRED]),
          Counter((p.get("step"), _iso(_parse(p.get("due_at")))) for p in outbox[OutboxKind.TIMER_FIRED]))
    _same(report, "message.received", Counter((e.data or {}).get("message") for e in by_kind[EventKind.MESSAGE_RECEIVED]),
          Counter(p.get("message") for p in outbox[OutboxKind.MESSAGE_RECEIVED]))
    for kind, outbox_kind in ((EventKind.CASE_STARTED, OutboxKind.CASE_CREATED),
                              (EventKind.CASE_COMPLETED, OutboxKind.CASE_COMPLETED)):
        n_history, n_outbox = len(by_kind[kind]), len(outbox[outbox_kind])
        if n_history > 1 or n_history != n_outbox:
            report(f"{n_history} {kind} history row(s) but {n_outbox} {outbox_kind} outbox event(s)")
    if len(by_kind[EventKind.CASE_STARTED]) != 1:
        report(f"{len(by_kind[EventKind.CASE_STARTED])} case_started history rows (expected 1)")


def _same(report: Any, kind: str, history: Counter, outbox: Counter) -> None:
    for key in sorted(history.keys() | outbox.keys(), key=str):
        if history[key] != outbox[key]:
            report(f"{kind} {key}: {history[key]} history row(s) but {outbox[key]} outbox event(s)")


def _parse(value: Any) -> datetime | None:
    if isinstance(value, datetime) or value is None:
        return value
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else "never"
