"""The one write path: everything a state change writes besides the command's own rows.

Commands (engine/casework/cases.py), timers (engine/casework/timers.py) and messages all end the same way: the
workflow moved, so `sync` brings the open-task projection, timer rows, message waits, history and
outbox in line with it and stores its state, in the caller's transaction; `commit` turns a
concurrent change of the same case into a Conflict. `history` and `emit` are the only writers of
case events and outbox events; `open_case` the only way a case comes to exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from SpiffWorkflow.exceptions import SpiffWorkflowException
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.event import listens_for
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.orm.util import identity_key

from engine.casework import messages, search
from engine.env import Env
from engine.errors import Conflict, Invalid, WorkflowFailed
from engine.models import (
    Case,
    CaseEvent,
    CaseLink,
    CaseMember,
    Counter,
    Group,
    HumanTask,
    OutboxEvent,
    ProcessDefinition,
    Timer,
    User,
)
from engine.ops.db import begin_write
from engine.security.access import MEETING_SOURCE
from engine.status import SYSTEM_EVENTS, CaseStatus, EventKind, OutboxKind, TaskState, TimerStatus
from engine.workflow import forms, roles, runtime, workflows
from engine.workflow.expressions import evaluate, limit_exceeded
from engine.workflow.specs import LoadedDefinition, latest_definition, parse_iso_duration

NUMBER_PREFIX = {"multi_agency": "MA", "emergency": "EM", "outreach": "OR", "participation": "PS"}
# Our processes a person opens by saying what the case is about (相談の概要, what was found): they
# have no start form to say so, and a case nobody can recognise in a list is of no use. A
# process with a start form requires its summary field when the form does; any other process
# (a designer's, without a start form) may start without one.
SUMMARY_AT_START = frozenset({"multi_agency", "emergency"})
# What a handed-over case is told about its origin, by the origin's process: the name the
# summary gives it, and the origin's facts the receiving team needs (kept under the
# origin's process key). Anything else stays in the origin case.


HANDOVER_FACTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "emergency": ("緊急対応", ("urgency", "danger_to", "situation", "response", "outcome")),
    "outreach": ("アウトリーチ", ("source", "household_ref", "amount_yen", "months_in_arrears", "attempts",
                               "visited_on", "situation", "needs")),
    # 参加支援: the support plan's participation need and the policy it serves.
    "multi_agency": ("多機関協働事業", ("participation_need", "policy")),
}


MAX_DATA_BYTES = 256 * 1024
_EVENTS = CaseEvent.__table__
_OUTBOX = OutboxEvent.__table__
_TIMERS = Timer.__table__
_TASKS = HumanTask.__table__
# Built once: a step runs these on the session's connection (no autoflush, no statement
# construction each time).
_INSERT_EVENT = _EVENTS.insert()
_INSERT_OUTBOX = _OUTBOX.insert()
_INSERT_TIMER = _TIMERS.insert()
_INSERT_TASK = _TASKS.insert()
# Not `draft`: left out it is SQL NULL, as an ORM insert leaves it (a JSON column given None
# would store JSON null).
_TASK_COLUMNS = [c.key for c in _TASKS.columns if c.key != "draft"]
_OPEN_TASKS = select(_TASKS.c.id, _TASKS.c.step, _TASKS.c.name).where(_TASKS.c.case_id == bindparam("case_id"),
                                                                     _TASKS.c.state == TaskState.OPEN)
_SET_TASKS_STATE = (update(_TASKS).where(_TASKS.c.id.in_(bindparam("ids", expanding=True)))
                    .values(state=bindparam("state")))
_SET_TIMERS_STATUS = (update(_TIMERS).where(_TIMERS.c.id.in_(bindparam("ids", expanding=True)))
                      .values(status=bindparam("status")))
_MEMBERS = CaseMember.__table__
_MEMBER_GROUPS = select(_MEMBERS.c.group_id).where(_MEMBERS.c.case_id == bindparam("case_id"))
_INSERT_MEMBER = _MEMBERS.insert()
_CASES = Case.__table__
_MOVE_LAST_EVENT = (update(_CASES).where(_CASES.c.id == bindparam("case_id"),
                                         or_(_CASES.c.last_event_at.is_(None), _CASES.c.last_event_at < bindparam("at")))
                    .values(last_event_at=bindparam("at")))
_PENDING_TIMERS = select(_TIMERS.c.task_id, _TIMERS.c.id).where(_TIMERS.c.case_id == bindparam("case_id"),
                                                               _TIMERS.c.status == TimerStatus.PENDING)


def next_number(session: Session, process_key: str, now: datetime) -> str:
    prefix = case_prefix(session, process_key)
    name = f"{prefix}-{now.year}"
    for _ in range(3):
        value = session.scalar(update(Counter).where(Counter.name == name)
                               .values(value=Counter.value + 1).returning(Counter.value))
        if value is not None:
            return f"{name}-{value:05d}"
        try:
            with session.begin_nested():
                session.add(Counter(name=name, value=1))
            return f"{name}-00001"
        except IntegrityError:
            continue  # another transaction created the counter first
    raise Conflict("案件番号を採番できませんでした。もう一度お試しください / could not allocate a case number; try again")


def case_prefix(session: Session, process_key: str) -> str:
    """The case number prefix of a process, unique among processes: `NUMBER_PREFIX` for ours,
    else derived from the key (`probe` → PR; `main` → MAI, since MA is multi_agency's). A
    process claims its prefix with its first case, as a counter row `prefix:<PREFIX>` whose
    value is the id of the process's first definition (the row's key makes the claim unique,
    even against a concurrent claim)."""
    if process_key in NUMBER_PREFIX:
        # Ours are reserved (no other process may take them), so they need no claim row; and
        # a claim would make every first case of a fresh system race its concurrent twins.
        return NUMBER_PREFIX[process_key]
    first = session.scalar(select(func.min(ProcessDefinition.id)).where(ProcessDefinition.process_key == process_key))
    if first is None:
        return "X"
    claimed = _claimed_prefix(session, first)
    if claimed is not None:
        return claimed
    reserved = set(NUMBER_PREFIX.values())
    for candidate in _prefix_candidates(process_key):
        if candidate in reserved:
            continue
        try:
            with session.begin_nested():
                session.add(Counter(name=f"prefix:{candidate}", value=first))
            return candidate
        except IntegrityError:
            # Held by another process, or just claimed for this one by a concurrent first case
            # (the unique key made us wait for its commit, so a fresh read now sees it).
            claimed = _claimed_prefix(session, first)
            if claimed is not None:
                return claimed
    raise Conflict("案件番号の接頭辞を決められませんでした / could not choose a case number prefix for "
                   f"process {process_key!r}")


def _claimed_prefix(session: Session, first_definition: int) -> str | None:
    name = session.scalar(select(Counter.name).where(Counter.name.like("prefix:%"), Counter.value == first_definition))
    return name.removeprefix("prefix:") if name is not None else None


def _prefix_candidates(process_key: str) -> list[str]:
    letters = "".join(c for c in process_key.upper() if c.isascii() and c.isalnum()) or "P"
    base = letters[:2] if len(letters) >= 2 else (letters + "X")[:2]
    out = [base] + [letters[:n] for n in range(3, min(len(letters), 6) + 1)]
    out += [f"{base}{n}" for n in range(2, 100)]
    return list(dict.fromkeys(out))


def history(session: Session, case: Case, kind: EventKind, now: datetime, actor: User | None,
             step: str | None = None, step_name: str | None = None, task_id: str | None = None,
             data: dict[str, Any] | None = None) -> None:
    # A Core insert: nothing reads the row back as an object, and an ORM add would cost a
    # unit-of-work flush (and trigger the autoflush of every later query). Within `batched`
    # (a step's projection) it joins the step's other rows in one executemany.
    if kind in SYSTEM_EVENTS:
        actor = None
    _insert(session, _INSERT_EVENT, {"case_id": case.id, "at": now, "actor_id": actor.id if actor else None,
                                     "kind": kind, "step": step, "step_name": step_name, "task_id": task_id,
                                     "data": data})
    # Kept with the history row it mirrors, so the stuck report's `idle` reads one indexed column.
    # Not written here: a step's state write (`sync`) carries it in its own UPDATE, and what no
    # state write follows (a claim, a note) is written once before the commit (`_move_last_events`)
    # as a plain UPDATE that does not bump the case's version (or a claim would collide with a
    # concurrent completion of another task of the same case). Once per instant: a step writes
    # several history rows at the same `now`.
    if case.last_event_at is None or now > case.last_event_at:
        moved = session.info.setdefault(LAST_EVENTS, {})
        if moved.get(case.id) is None or now > moved[case.id]:
            moved[case.id] = now


# {case id: when} of history written in the session's transaction and not yet on the case row.
LAST_EVENTS = "tsunagu.last_events"


def take_last_event(session: Session, case: Case) -> None:
    """Put the case's pending `last_event_at` on the case itself, for the state write to carry."""
    at = session.info.get(LAST_EVENTS, {}).pop(case.id, None)
    if at is not None and (case.last_event_at is None or at > case.last_event_at):
        case.last_event_at = at


@listens_for(Session, "before_commit")
def _move_last_events(session: Session) -> None:
    moved = session.info.pop(LAST_EVENTS, None)
    if not moved:
        return
    conn = session.connection()
    for case_id, at in moved.items():
        conn.execute(_MOVE_LAST_EVENT, {"case_id": case_id, "at": at})
        loaded = session.identity_map.get(identity_key(Case, case_id))
        if loaded is not None and (loaded.last_event_at is None or at > loaded.last_event_at):
            set_committed_value(loaded, "last_event_at", at)


_SAVEPOINT_EVENTS = "tsunagu.last_events.at_savepoint"


@listens_for(Session, "after_transaction_create")
def _remember_last_events(session: Session, transaction: Any) -> None:
    if transaction.nested:
        saved = session.info.setdefault(_SAVEPOINT_EVENTS, {})
        saved[id(transaction)] = dict(session.info.get(LAST_EVENTS, {}))


@listens_for(Session, "after_soft_rollback")
def _forget_last_events(session: Session, transaction: Any) -> None:
    # Whatever history a rolled-back transaction (or savepoint) wrote is gone with it.
    saved = session.info.get(_SAVEPOINT_EVENTS, {}).pop(id(transaction), None)
    if transaction.nested and saved is not None:
        session.info[LAST_EVENTS] = saved
    else:
        session.info.pop(LAST_EVENTS, None)
        session.info.pop(_SAVEPOINT_EVENTS, None)


@listens_for(Session, "after_transaction_end")
def _drop_savepoint_events(session: Session, transaction: Any) -> None:
    # (A savepoint's own end comes before its rollback's event, so its snapshot stays until then.)
    if transaction.parent is None:
        session.info.pop(_SAVEPOINT_EVENTS, None)
        session.info.pop(LAST_EVENTS, None)


def emit(session: Session, kind: OutboxKind, case: Case, now: datetime, **payload: Any) -> None:
    body = {"case_id": case.id, "case_number": case.number, "process": case.process_key, **payload}
    _insert(session, _INSERT_OUTBOX, {"kind": kind, "case_id": case.id, "payload": body, "created_at": now,
                                      "delivered_at": None, "attempts": 0})


# {insert statement: rows} a `batched` block has yet to write.
_BATCH = "tsunagu.batch"


def _insert(session: Session, statement: Any, row: dict[str, Any]) -> None:
    batch = session.info.get(_BATCH)
    if batch is None:
        session.connection().execute(statement, row)
    else:
        batch.setdefault(statement, []).append(row)


@contextmanager
def batched(session: Session) -> Iterator[None]:
    """History and outbox rows written inside go out together when the block ends (one
    executemany per table, in the order they were written), not one statement each. Only for
    code that reads neither table back before the block ends (nested blocks join the outer one);
    an exception discards them with the transaction it rolls back."""
    if _BATCH in session.info:
        yield
        return
    batch: dict[Any, list[dict[str, Any]]] = {}
    session.info[_BATCH] = batch
    try:
        yield
    except BaseException:
        session.info.pop(_BATCH, None)
        raise
    session.info.pop(_BATCH, None)
    conn = session.connection()
    for statement, rows in batch.items():
        conn.execute(statement, rows)


_CASE_ROW = select(_CASES).where(_CASES.c.id == bindparam("case_id"))
# What `sync` may change on a case.
_SAVED = ("status", "error", "completed_at", "state", "serializer_version", "updated_at", "last_event_at")
_SAVE_CASE = (update(_CASES).where(_CASES.c.id == bindparam("case_id"), _CASES.c.version == bindparam("loaded"))
              .values({**{k: bindparam(f"new_{k}") for k in _SAVED}, "version": bindparam("new_version")}))


def read_case(session: Session, case_id: str) -> Case | None:
    """The case as a plain object outside the session (a Core read), for a caller that saves it
    with `save_case`: a timer's fire pays for neither the ORM's load nor its flush."""
    row = session.connection().execute(_CASE_ROW, {"case_id": case_id}).mappings().first()
    return Case(**row) if row is not None else None


def save_case(session: Session, case: Case) -> None:
    """Store what `sync` changed on a case read with `read_case`: UPDATE ... WHERE version = the
    version read, as the ORM's own save does, and StaleDataError as it raises if another
    transaction changed the case meanwhile."""
    params = {f"new_{k}": getattr(case, k) for k in _SAVED}
    saved = session.connection().execute(_SAVE_CASE, {**params, "case_id": case.id, "loaded": case.version,
                                                      "new_version": case.version + 1})
    if saved.rowcount != 1:
        raise StaleDataError(f"case {case.id} was changed by another transaction")
    case.version += 1


class _DefinitionOf:
    """What the spec cache asks of a case, for one read with `read_case`: it has no session to
    load its `definition` from on a cache miss, so this loads it in `session`."""

    def __init__(self, session: Session, definition_id: int) -> None:
        self.session, self.definition_id = session, definition_id

    @property
    def definition(self) -> ProcessDefinition | None:
        return self.session.get(ProcessDefinition, self.definition_id)


def load_read(session: Session, env: Env, case: Case) -> tuple[LoadedDefinition, Any]:
    """`load` for a case read with `read_case`."""
    defn = env.specs.for_case(_DefinitionOf(session, case.definition_id))
    return defn, workflow_of(env, defn, case)


def load(env: Env, case: Case) -> tuple[LoadedDefinition, Any]:
    """The case's definition and its workflow, to run a step on and `sync`: the workflow this
    process last stored for the case when the row still holds that state, else its stored state
    deserialized."""
    defn = env.specs.for_case(case)
    return defn, workflow_of(env, defn, case)


def workflow_of(env: Env, defn: LoadedDefinition, case: Case) -> Any:
    cached = env.workflows.take(case.id, case.state, case.serializer_version, defn)
    return cached if cached is not None else runtime.load(defn, case.state, case.serializer_version)


def workflow_failure(exc: Exception) -> WorkflowFailed:
    """The 422 for an exception out of Spiff: the element it failed at, and what went wrong
    (a script limit's own text when that was it)."""
    task = getattr(exc, "task", None)
    element = getattr(getattr(task, "task_spec", None), "bpmn_id", None) if task is not None else None
    fields = {"element": element} if element else None
    limit = limit_exceeded(exc)
    if limit is not None:
        ja, _, en = limit.message.partition(" / ")
        return WorkflowFailed(f"{ja}（要素 {element}） / {en} (element {element})" if element else limit.message,
                              fields)
    detail = getattr(exc, "error_msg", None) or str(exc).splitlines()[0]
    where = f" at element {element}" if element else ""
    return WorkflowFailed(f"ワークフローの実行に失敗しました{where} / The workflow failed{where}: {detail}", fields)


def sync(session: Session, env: Env, case: Case, defn: LoadedDefinition, wf: Any, actor: User | None,
         now: datetime, context: dict[str, Any] | None = None, handing_group: str | None = None,
         reuse: bool = True) -> None:
    """Bring our rows in line with the workflow after it moved, then store its state (and keep
    `wf` for the case's next step once this transaction commits, unless `reuse` is False).
    `handing_group` holds the step just completed: it refers any case handed over."""
    with batched(session):
        project(session, env, case, defn, wf, actor, now, context, handing_group, reuse)


def project(session: Session, env: Env, case: Case, defn: LoadedDefinition, wf: Any, actor: User | None,
          now: datetime, context: dict[str, Any] | None = None, handing_group: str | None = None,
          reuse: bool = True) -> None:
    """`sync`'s work, inside its `batched` block."""
    # One flush of what the command changed on its objects (the completed task, say), then
    # plain Core reads and writes: the projection's queries see it, and none of them pays
    # for an autoflush or for building ORM objects it only compares ids of.
    session.flush()
    tokens = runtime.tokens(wf)
    ready = {str(t.id): t for t in tokens.ready}
    conn = session.connection()
    open_rows = {row.id: row for row in conn.execute(_OPEN_TASKS, {"case_id": case.id})}
    cancelled = sorted(open_rows.keys() - ready.keys())
    if cancelled:
        conn.execute(_SET_TASKS_STATE, {"ids": cancelled, "state": TaskState.CANCELLED})
        for task_id in cancelled:
            row = open_rows[task_id]
            _set_loaded(session, HumanTask, task_id, state=TaskState.CANCELLED)
            history(session, case, EventKind.TASK_CANCELLED, now, None, row.step, row.name, task_id)
    members: set[str] | None = None
    created: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for task_id, task in ready.items():
        if task_id in open_rows:
            continue
        step = task.task_spec.bpmn_id
        info = defn.steps[step]
        due = now + parse_iso_duration(info.due_in, now) if info.due_in else None
        row = HumanTask(id=task_id, case_id=case.id, process_key=case.process_key, step=step, name=info.name,
                        lane=info.lane, group_id=task_group(env, case, info, task.data),
                        form_key=info.form_key, state=TaskState.OPEN, created_at=now, due_at=due)
        history(session, case, EventKind.TASK_CREATED, now, None, step, info.name, task_id)
        emit(session, OutboxKind.TASK_CREATED, case, now, task_id=task_id, step=step, step_name=info.name,
                group=row.group_id, due_at=due.isoformat() if due else None)
        if info.same_assignee_as:
            _keep_assignee(session, case, row, info.same_assignee_as, now)
        if info.group_from and row.group_id and row.group_id not in env.org.case_wide_groups:
            if members is None:
                members = set(conn.execute(_MEMBER_GROUPS, {"case_id": case.id}).scalars())
            if row.group_id not in members:
                members.add(row.group_id)
                _join(session, case, row.group_id, step, now)
        # `row` stays a plain object (not added): a Core insert, as for history.
        # Columns left unset are left out, so their server defaults apply (escalation_level 0).
        values = {key: value for key in _TASK_COLUMNS if (value := getattr(row, key)) is not None}
        created.setdefault(tuple(values), []).append(values)
    # One statement for the new tasks that set the same columns (a parallel split's branches).
    for rows in created.values():
        conn.execute(_INSERT_TASK, rows)

    waiting = {str(t.id): (t, due) for t, due in tokens.timers}
    pending = {task_id: timer_id for task_id, timer_id in conn.execute(_PENDING_TIMERS, {"case_id": case.id})}
    gone = [timer_id for task_id, timer_id in pending.items() if task_id not in waiting]
    if gone:
        conn.execute(_SET_TIMERS_STATUS, {"ids": gone, "status": TimerStatus.CANCELLED})
        for timer_id in gone:
            _set_loaded(session, Timer, timer_id, status=TimerStatus.CANCELLED)
    for task_id, (task, due_text) in waiting.items():
        if task_id in pending:
            continue
        due = datetime.fromisoformat(due_text)
        name = task.task_spec.bpmn_name or task.task_spec.bpmn_id
        conn.execute(_INSERT_TIMER, {"case_id": case.id, "task_id": task_id, "step": task.task_spec.bpmn_id,
                                     "step_name": name, "due_at": due, "status": TimerStatus.PENDING,
                                     "created_at": now, "fired_at": None, "attempts": 0, "last_error": None})
        history(session, case, EventKind.TIMER_SCHEDULED, now, None, task.task_spec.bpmn_id, name, task_id,
                 {"due_at": due.isoformat()})

    messages.sync_waits(session, case, wf, now, tokens.catches)

    for event in wf.get_events():
        target = defn.message_routes.get(getattr(event.event_definition, "name", None))
        if target:
            _hand_over(session, env, case, target, actor, now, context or {},
                       handing_group or case.referring_group_id)

    # (anybpmn) A workflow that waits for nothing can go no further (a diagram fault, such as
    # a join a token never reaches): the case says so as an error naming where it stopped,
    # instead of sitting active with nothing to do.
    stuck = None if ready or waiting else runtime.stuck_at(wf)
    if stuck is not None:
        where = ", ".join(stuck) or "?"
        text = (f"ワークフローが先に進めません（{where}）/ The workflow can go no further: it waits at {where} "
                "for nothing a person, timer or message can give; correct the diagram")
        case.status, case.error = CaseStatus.ERROR, text
        history(session, case, EventKind.CASE_ERROR, now, actor, data={"error": text})
        emit(session, OutboxKind.CASE_ERROR, case, now, step=stuck[0] if stuck else None)
    elif wf.is_completed() and case.status != CaseStatus.COMPLETED:
        case.status = CaseStatus.COMPLETED
        case.completed_at = now
        history(session, case, EventKind.CASE_COMPLETED, now, None)
        emit(session, OutboxKind.CASE_COMPLETED, case, now)
    elif case.status == CaseStatus.ERROR:
        case.status, case.error = CaseStatus.ACTIVE, None

    case.state = runtime.dump(wf)
    case.serializer_version = runtime.SERIALIZER_VERSION
    case.updated_at = now
    take_last_event(session, case)
    if reuse:
        env.workflows.hold(conn, case.id, case.state, case.serializer_version, defn, wf)
    else:
        workflows.release(conn, case.id)


def task_group(env: Env, case: Case, info: Any, data: dict[str, Any]) -> str | None:
    """The group whose queue gets a task of step `info`: the one its `groupFrom` names over the
    task's data (a multi-instance's own item), else its lane's."""
    if info.group_from:
        try:
            named = evaluate(info.group_from, dict(data))
        except Exception:  # noqa: BLE001 - the data does not name one: the lane's group holds it
            named = None
        if isinstance(named, str) and env.org.group(named) is not None:
            return named
    return env.org.lane_group(info.lane, case.referring_group_id)


def _join(session: Session, case: Case, group_id: str, step: str, now: datetime) -> None:
    """A group the diagram names for a task (an agency asked to help) joins the case, so that it
    sees what it is asked about (`sync` has seen that it has not yet)."""
    session.connection().execute(_INSERT_MEMBER, {"case_id": case.id, "group_id": group_id, "source": step[:32],
                                                  "since": now})


def _set_loaded(session: Session, model: type, key: Any, **values: Any) -> None:
    """After a Core UPDATE of a row: the session's object of it, if it holds one, says so too
    (as committed, so no flush writes it again)."""
    loaded = session.identity_map.get(identity_key(model, key))
    if loaded is not None:
        for name, value in values.items():
            set_committed_value(loaded, name, value)


def _keep_assignee(session: Session, case: Case, row: HumanTask, step: str, now: datetime) -> None:
    """Give `row` to whoever completed the case's latest `step` task, if they may still work
    on it: a caseworker keeps the household they already contacted."""
    previous = session.scalars(
        select(HumanTask).where(HumanTask.case_id == case.id, HumanTask.step == step,
                                HumanTask.state == TaskState.COMPLETED, HumanTask.completed_by_id.is_not(None))
        .order_by(HumanTask.completed_at.desc(), HumanTask.id.desc()).limit(1)).first()
    user = session.get(User, previous.completed_by_id) if previous is not None else None
    if user is None or not user.active or row.group_id not in user.group_ids:
        return  # left in the group's queue
    row.assignee_id = user.id
    history(session, case, EventKind.TASK_ASSIGNED, now, None, row.step, row.name, row.id,
             {"assignee": user.name, "same_as": step})
    emit(session, OutboxKind.TASK_CLAIMED, case, now, task_id=row.id, step=row.step, by="assignment")


def _hand_over(session: Session, env: Env, origin: Case, process_key: str, actor: User | None,
               now: datetime, context: dict[str, Any], group: str) -> Case:
    """Start the case a thrown message asks for (emergency or outreach → multi-agency) and
    link both. `group` (the group that handed over) is the new case's referring agency."""
    reason = context.get("reason") or ""
    label, facts = HANDOVER_FACTS.get(origin.process_key, (origin.process_key, ()))
    data = {
        "summary": f"{label} {origin.number} からの引継ぎ。{reason}".strip(),
        "origin_case": {"id": origin.id, "number": origin.number, "process": origin.process_key},
        origin.process_key: {k: context[k] for k in facts if k in context},
    }
    if origin.consent:
        data["consent"] = origin.consent
    new = open_case(session, env, actor, process_key, data, group, now)
    session.add(CaseLink(from_case_id=origin.id, to_case_id=new.id, kind="handover", created_at=now))
    history(session, origin, EventKind.CASE_LINKED, now, actor, data={"to": new.number, "to_id": new.id})
    history(session, new, EventKind.CASE_LINKED, now, actor, data={"from": origin.number, "from_id": origin.id})
    emit(session, OutboxKind.CASE_LINKED, origin, now, linked_case_id=new.id, linked_case_number=new.number)
    return new


def open_case(session: Session, env: Env, actor: User | None, process_key: str, data: dict[str, Any],
               group: str, now: datetime, message: str | None = None,
               correlation: dict[str, Any] | None = None) -> Case:
    row = latest_definition(session, process_key)
    if row is None:
        raise Invalid(f"プロセス {process_key!r} はありません / unknown process {process_key!r}", {"process": "unknown process"})
    defn = env.specs.get(row)
    if defn.start_form is not None:
        try:
            forms.validate(defn.start_form, data, env.org.group_ids())
        except Invalid as exc:
            fields = {f"data.{k}": v for k, v in (exc.fields or {}).items()}
            raise Invalid(f"開始時のデータに誤りがあります / Invalid start data: {', '.join(sorted(fields))}",
                          fields) from None
    # Start data means what the start form declares; without one, what its field names say.
    fields = roles.case_fields(defn.start_form) if defn.start_form is not None else roles.BY_NAME
    _check_summary(defn, process_key, data, fields.get(roles.CASE_SUMMARY))
    wf = runtime.new_workflow(defn)
    try:
        runtime.start(wf, dict(data), now, env.settings.script_limits, message, correlation)
    except SpiffWorkflowException as exc:
        raise workflow_failure(exc) from None
    case = Case(id=str(uuid.uuid4()), number=next_number(session, process_key, now), process_key=process_key,
                definition_id=row.id, definition=row, status=CaseStatus.ACTIVE, referring_group_id=group,
                created_by_id=actor.id if actor else None, summary="",
                created_at=now, updated_at=now, state="", serializer_version=runtime.SERIALIZER_VERSION)
    summary = data.get(fields.get(roles.CASE_SUMMARY, ""))
    case.summary = summary[:4000] if isinstance(summary, str) else ""
    case.search_text = search.case_text(case.number, case.summary, [])
    if data.get(fields.get(roles.CASE_CONSENT, "")) in CONSENT_VALUES:
        set_consent(case, data[fields[roles.CASE_CONSENT]], actor, now)
    session.add(case)
    session.flush()
    search.store(session, case.id, case.search_text)
    history(session, case, EventKind.CASE_STARTED, now, actor, data=data or None)
    emit(session, OutboxKind.CASE_CREATED, case, now, group=group)
    sync(session, env, case, defn, wf, actor, now)
    return case


def _check_summary(defn: LoadedDefinition, process_key: str, data: dict[str, Any], field: str | None) -> None:
    """Refuse a start without the summary the process needs (see SUMMARY_AT_START); white space
    alone is no summary."""
    if defn.start_form is not None:
        needed = field is not None and field in (defn.start_form.get("required") or [])
    else:
        # Sent, it must say something (the start pages always send it). Left out, the case
        # opens as the API has always allowed: its summary is then asked for at intake.
        needed = process_key in SUMMARY_AT_START and field is not None and field in data
    if not needed or field is None:
        return
    value = data.get(field)
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"概要を入力してください / The summary is required (data.{field})",
                      {f"data.{field}": "入力してください / This field is required"})


def commit(session: Session) -> None:
    try:
        session.commit()
    except StaleDataError:
        session.rollback()
        raise Conflict("この案件は他の操作で更新されました。もう一度お試しください / "
                       "The case was changed by someone else at the same time; reload and try again") from None


def apply_case_fields(session: Session, case: Case, schema: dict[str, Any] | None, data: dict[str, Any],
                      actor: User | None, now: datetime) -> None:
    """Give the case what the form's fields declare (`x-tsunagu`, see engine.workflow.forms): its
    summary, the resident's consent, the groups that join it."""
    fields = roles.case_fields(schema)
    summary = data.get(fields.get(roles.CASE_SUMMARY, ""))
    if isinstance(summary, str) and summary[:4000] != case.summary:
        case.summary = summary[:4000]
        case.search_text = search.current_text(session, case)
        search.store(session, case.id, case.search_text)
    consent = data.get(fields.get(roles.CASE_CONSENT, ""))
    if consent in CONSENT_VALUES:
        set_consent(case, consent, actor, now)
    participants = data.get(fields.get(roles.CASE_PARTICIPANTS, ""))
    if participants is not None:
        add_participants(session, case, participants, now)
    held = data.get(fields.get(roles.CASE_ROLE_HOLDERS, ""))
    if held is not None:
        set_roles(session, case, held, now)


def set_roles(session: Session, case: Case, held: Any, now: datetime) -> None:
    """The roles a support meeting gave (rows of `group` and `role`): each group holds its own
    (several rows of one group are one role holder), joining the case if it had not; a group
    left out by a later meeting keeps its access but no longer holds a role."""
    if not isinstance(held, list):
        return
    by_group: dict[str, list[str]] = {}
    for item in held:
        if isinstance(item, dict) and isinstance(item.get("group"), str) and isinstance(item.get("role"), str) \
                and session.get(Group, item["group"]) is not None:
            by_group.setdefault(item["group"], []).append(item["role"].strip())
    session.flush()  # the participants just added
    members = {m.group_id: m for m in session.scalars(select(CaseMember).where(CaseMember.case_id == case.id))}
    for group_id, member in members.items():
        if group_id not in by_group:
            member.role = None
    for group_id, texts in by_group.items():
        role = "、".join(t for t in texts if t)
        if group_id in members:
            members[group_id].role = role
        else:
            session.add(CaseMember(case_id=case.id, group_id=group_id, source="support_meeting", since=now, role=role))


def add_participants(session: Session, case: Case, participants: Any, now: datetime) -> None:
    if not isinstance(participants, list):
        return
    have = set(session.scalars(select(CaseMember.group_id).where(CaseMember.case_id == case.id)))
    for group_id in dict.fromkeys(p for p in participants if isinstance(p, str)):
        if group_id not in have:
            session.add(CaseMember(case_id=case.id, group_id=group_id, source=MEETING_SOURCE, since=now))


def mark_error(session: Session, case_id: str, error: str, now: datetime, element: str | None = None) -> None:
    """Mark the case `error` with `error` as its text, in a transaction of its own (commits
    whatever else the session holds, e.g. the failed timer)."""
    # A write transaction from the start: after the caller's rollback a plain one would read
    # first and, on SQLite, fail at once (not wait) if another writer committed meanwhile.
    begin_write(session)
    record_error(session, case_id, error, now, element)
    try:
        session.commit()
    except StaleDataError:
        session.rollback()


def record_error(session: Session, case_id: str, error: str, now: datetime, element: str | None = None) -> None:
    """Mark the case `error` with `error` as its text, in the caller's transaction."""
    case = session.get(Case, case_id)
    if case is None:
        return
    case.status, case.error = CaseStatus.ERROR, error[:2000]
    history(session, case, EventKind.CASE_ERROR, now, None, data={"error": error[:2000]})
    # The error text may quote form data: only the failing element goes out.
    emit(session, OutboxKind.CASE_ERROR, case, now, step=element)


CONSENT_VALUES = ("given", "not_given", "unknown")


def set_consent(case: Case, value: str, actor: User | None, now: datetime) -> None:
    case.consent, case.consent_recorded_at = value, now
    case.consent_recorded_by_id = actor.id if actor else None
