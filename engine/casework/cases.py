"""The domain API: open cases, complete, claim, release and assign tasks, read cases; each
command ends in the one write path, `engine.casework.writes`.

Each command runs in one transaction: the workflow state, the task projection, timers,
history and outbox rows are written together and committed at the end, or not at all.
A concurrent change to the same case is caught by the case row's version and reported
as a Conflict; nothing of the losing attempt is kept.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState as SpiffState
from sqlalchemy import Select, func, literal, or_, select, union, union_all, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, joinedload

from engine.casework import household, messages, outcomes, queue, search, writes
from engine.clock import utcnow
from engine.env import Env
from engine.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unauthorized
from engine.models import (
    Case,
    CaseEvent,
    CaseLink,
    CaseMember,
    Group,
    HumanTask,
    InboundMessage,
    MessageWait,
    ProcessDefinition,
    Source,
    Timer,
    User,
)
from engine.ops import sqljson
from engine.ops.db import begin_write, command
from engine.security import audit
from engine.security.access import (
    can_see_case,
    can_work_on,
    record_denial,
    require_case,
    visible_cases_bulk_clause,
    visible_cases_clause,
)
from engine.status import CaseStatus, EventKind, OutboxKind, Role, TaskState, TimerStatus, WaitKind
from engine.workflow import annotations, forms, limits, roles, runtime
from engine.workflow.expressions import limit_exceeded
from engine.workflow.specs import StepInfo

# ---------------------------------------------------------------- commands


@command
def start_case(session: Session, env: Env, actor: User, process_key: Any, data: Any, group: Any,
               now: datetime, commit: bool = True) -> Case:
    """Open a case of `process_key`; its referring lane belongs to `group`. With
    `commit=False` the caller's command commits it with what else it writes (a consultation
    that opens a case, say)."""
    if not isinstance(process_key, str) or not process_key:
        raise Invalid("プロセスを指定してください / process is required", {"process": "required"})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Invalid("data は JSON オブジェクトです / data must be a JSON object", {"data": "must be an object"})
    limits.check_depth(data)
    if any(not isinstance(k, str) or not k.isidentifier() or k.startswith("_") for k in data):
        raise Invalid("data のキーは英数字の名前です / data keys must be plain identifiers", {"data": "keys must be identifiers"})
    if len(repr(data)) > writes.MAX_DATA_BYTES:
        raise Invalid("data が大きすぎます / data is too large", {"data": "too large"})
    mine = actor.group_ids
    if group is None:
        if len(mine) != 1:
            raise Invalid("複数のグループに所属しています。紹介元のグループを選んでください / you belong to several groups: say which one "
                          "refers the case",
                          {"group": "required when the caller has several groups"})
        group = mine[0]
    if not isinstance(group, str) or session.get(Group, group) is None:
        raise Invalid(f"グループ {group!r} はありません / unknown group {group!r}", {"group": "unknown group"})
    privileged = set(mine) & env.org.case_wide_groups or Role.ADMIN in actor.roles
    if group not in mine and not privileged:
        raise Forbidden(f"グループ {group!r} に所属していません / you are not a member of group {group!r}", {"group": "not one of your groups"})
    case = writes.open_case(session, env, actor, process_key, data, group, now)
    audit.record(session, actor, audit.Action.CASE_START, now, case, {"process": process_key, "group": group})
    if commit:
        writes.commit(session)
    return case


def complete_task(session: Session, env: Env, actor: User, task_id: str, data: Any, now: datetime) -> Case:
    """Complete the task with the form's `data`: the case moves on. Returns the case after the step."""
    return complete(session, env, actor, task_id, data, now)[0]


@command
def complete(session: Session, env: Env, actor: User, task_id: str, data: Any, now: datetime
             ) -> tuple[Case, HumanTask]:
    """`complete_task`, returning the completed task's row too (as committed), for an answer that
    shows both without reading the task again."""
    row = _task_for(session, env, actor, task_id, audit.Action.TASK_COMPLETE, now, lock=True)
    if row.state != TaskState.OPEN:
        raise Conflict(f"この作業は既に{'完了' if row.state == TaskState.COMPLETED else '取り消'}されています / "
                       f"task is already {row.state}")
    if not can_work_on(actor, row):
        raise Forbidden(f"この作業はグループ {row.group_id} のものです / this task belongs to group {row.group_id}")
    if row.assignee_id is not None and row.assignee_id != actor.id:
        raise Conflict("この作業は他の職員が担当しています / the task is claimed by someone else")
    case = row.case
    defn, wf = writes.load(env, case)
    schema = annotations.for_consent(defn.forms[row.form_key], case.consent) if row.form_key else roles.CONFIRMATION
    limits.check_depth(data)
    data = forms.validate(schema, data, env.org.group_ids())
    outcomes.check(session, env, case, row.step, data)
    task = wf.get_task_from_id(uuid.UUID(row.id))
    if task is None or task.state != SpiffState.READY:
        raise Conflict("この作業はもう実行できません / the task is no longer ready")
    try:
        # The step runs inside this write transaction (on SQLite the database's write lock):
        # the script budget (at most `script_cpu_seconds`, a few times that on the wall clock)
        # ends a runaway long before other writers' busy timeout (30 s) would give up.
        runtime.complete(wf, task, forms.with_defaults(schema, data), now, env.settings.script_limits)
    except SpiffWorkflowException as exc:
        session.rollback()
        failed = writes.workflow_failure(exc)
        _keep_submission(session, row.id, actor, data)
        writes.mark_error(session, case.id, failed.message if limit_exceeded(exc) else str(exc), now,
                   (failed.fields or {}).get("element"))
        raise failed from None
    row.state, row.completed_at, row.completed_by_id, row.draft = TaskState.COMPLETED, now, actor.id, None
    if row.assignee_id is None:
        row.assignee_id = actor.id
    # The completion's own history and outbox rows go out with the projection's, one
    # executemany per table (nothing here reads either table back).
    with writes.batched(session):
        writes.apply_case_fields(session, case, defn.forms.get(row.form_key) if row.form_key else None, data,
                                 actor, now)
        writes.history(session, case, EventKind.TASK_COMPLETED, now, actor, row.step, row.name, row.id, data)
        writes.emit(session, OutboxKind.TASK_COMPLETED, case, now, task_id=row.id, step=row.step,
                    step_name=row.name)
        outcomes.record(session, env, case, row.step, data, wf, now)
        writes.sync(session, env, case, defn, wf, actor, now, context=dict(task.data), handing_group=row.group_id)
    outcomes.finished(session, case)
    audit.record(session, actor, audit.Action.TASK_COMPLETE, now, case, {"task_id": row.id, "step": row.step})
    writes.commit(session)
    return case, row


def _keep_submission(session: Session, task_id: str, actor: User, data: dict[str, Any]) -> None:
    """After a completion the diagram failed on: keep what was submitted as the task's draft,
    and the submitter as its assignee, in the transaction that marks the case `error`, so that
    nothing typed is lost and a supervisor's retry (engine.casework.repair) can run the same step again."""
    begin_write(session)
    row = session.get(HumanTask, task_id)
    if row is not None and row.state == TaskState.OPEN:
        row.draft = data
        if row.assignee_id is None:
            row.assignee_id = actor.id


def _task_for(session: Session, env: Env, actor: User, task_id: Any, via: str, now: datetime | None,
              lock: bool = False) -> HumanTask:
    """The task, if `actor` may see its case or work on it; else NotFound, the refusal of
    an existing task recorded as an attempt at `via` (an audit action)."""
    if not isinstance(task_id, str):
        raise NotFound("作業が見つかりません / task not found")
    # `lock`: hold the task row (SELECT ... FOR UPDATE) until commit, so a claim committed
    # meanwhile is seen rather than overwritten (PostgreSQL; SQLite writers are serial).
    row = session.get(HumanTask, task_id, with_for_update={"of": HumanTask.__table__} if lock else None)
    if row is None:
        raise NotFound("作業が見つかりません / task not found")
    if not (can_see_case(session, actor, row.case, env.org) or can_work_on(actor, row)):
        record_denial(session, actor, row.case, now, {"via": via, "task_id": row.id, "step": row.step})
        raise NotFound("作業が見つかりません / task not found")
    return row


@command
def claim_task(session: Session, env: Env, actor: User, task_id: str, now: datetime) -> HumanTask:
    row = _task_for(session, env, actor, task_id, audit.Action.TASK_CLAIM, now)
    if row.state != TaskState.OPEN:
        raise Conflict(f"この作業は既に {row.state} です / task is already {row.state}")
    if not can_work_on(actor, row):
        raise Forbidden(f"この作業はグループ {row.group_id} のものです / this task belongs to group {row.group_id}")
    if row.assignee_id == actor.id:
        # Already theirs (a double click, a retried request): nothing happens, so the
        # history, the trail and the webhooks say "claimed" once.
        session.commit()
        return row
    result = session.execute(
        update(HumanTask)
        .where(HumanTask.id == row.id, HumanTask.state == TaskState.OPEN,
               (HumanTask.assignee_id.is_(None)) | (HumanTask.assignee_id == actor.id))
        .values(assignee_id=actor.id))
    if result.rowcount != 1:
        session.rollback()
        raise Conflict("この作業は他の職員が担当しています / the task is already claimed by someone else")
    writes.history(session, row.case, EventKind.TASK_CLAIMED, now, actor, row.step, row.name, row.id)
    writes.emit(session, OutboxKind.TASK_CLAIMED, row.case, now, task_id=row.id, step=row.step, by="claim")
    audit.record(session, actor, audit.Action.TASK_CLAIM, now, row.case, {"task_id": row.id, "step": row.step})
    session.commit()
    session.refresh(row)
    return row


@command
def release_task(session: Session, env: Env, actor: User, task_id: str, now: datetime) -> HumanTask:
    row = _task_for(session, env, actor, task_id, audit.Action.TASK_RELEASE, now, lock=True)
    if row.state != TaskState.OPEN:
        raise Conflict(f"この作業は既に {row.state} です / task is already {row.state}")
    if row.assignee_id != actor.id and Role.SUPERVISOR not in actor.roles:
        raise Forbidden("作業を戻せるのは担当者か管理職です / only the assignee or a supervisor may release a task")
    row.assignee_id = None
    writes.history(session, row.case, EventKind.TASK_RELEASED, now, actor, row.step, row.name, row.id)
    audit.record(session, actor, audit.Action.TASK_RELEASE, now, row.case, {"task_id": row.id, "step": row.step})
    session.commit()
    return row


@command
def assign_task(session: Session, env: Env, actor: User, task_id: str, assignee_name: Any,
                now: datetime) -> HumanTask:
    if Role.SUPERVISOR not in actor.roles:
        raise Forbidden("他の職員に割り当てられるのは管理職です / only a supervisor may assign tasks to others")
    row = _task_for(session, env, actor, task_id, audit.Action.TASK_ASSIGN, now, lock=True)
    if row.state != TaskState.OPEN:
        raise Conflict(f"この作業は既に {row.state} です / task is already {row.state}")
    assignee = session.scalar(select(User).where(User.name == assignee_name)) if isinstance(assignee_name, str) else None
    if assignee is None:
        raise Invalid(f"職員 {assignee_name!r} はいません / no user {assignee_name!r}", {"assignee": "unknown user"})
    if row.group_id not in assignee.group_ids:
        raise Invalid(f"{assignee.name} はグループ {row.group_id} に所属していません / {assignee.name} is not a member of group {row.group_id}", {"assignee": "not in the task's group"})
    row.assignee_id = assignee.id
    writes.history(session, row.case, EventKind.TASK_ASSIGNED, now, actor, row.step, row.name, row.id,
             {"assignee": assignee.name})
    writes.emit(session, OutboxKind.TASK_CLAIMED, row.case, now, task_id=row.id, step=row.step, by="assignment")
    audit.record(session, actor, audit.Action.TASK_ASSIGN, now, row.case,
                 {"task_id": row.id, "step": row.step, "assignee": assignee.name})
    session.commit()
    return row


@command
def save_draft(session: Session, env: Env, actor: User, task_id: str, data: Any, now: datetime) -> HumanTask:
    """Keep what the user typed so far; validated only on completion."""
    row = _task_for(session, env, actor, task_id, audit.Action.TASK_DRAFT, now)
    if row.state != TaskState.OPEN:
        raise Conflict(f"この作業は既に {row.state} です / task is already {row.state}")
    if not can_work_on(actor, row):
        raise Forbidden(f"この作業はグループ {row.group_id} のものです / this task belongs to group {row.group_id}")
    if not isinstance(data, dict):
        raise Invalid("下書きは JSON オブジェクトです / draft must be a JSON object", {"data": "must be an object"})
    limits.check_depth(data)
    if len(repr(data)) > writes.MAX_DATA_BYTES:
        raise Invalid("下書きが大きすぎます / draft is too large", {"data": "too large"})
    row.draft = data
    audit.record(session, actor, audit.Action.TASK_DRAFT, now, row.case, {"task_id": row.id, "step": row.step})
    session.commit()
    return row


@command
def record_consent(session: Session, env: Env, actor: User, case_id: str, consent: Any, now: datetime) -> Case:
    """Record the resident's consent (本人同意) with when and by whom."""
    case = require_case(session, actor, case_id, env.org, via=audit.Action.CONSENT_RECORD, now=now)
    if consent not in writes.CONSENT_VALUES:
        raise Invalid(f"同意は {', '.join(writes.CONSENT_VALUES)} のいずれかです / consent must be one of {', '.join(writes.CONSENT_VALUES)}", {"consent": "given, not_given or unknown"})
    old = case.consent
    writes.set_consent(case, consent, actor, now)
    writes.history(session, case, EventKind.CONSENT_RECORDED, now, actor, data={"consent": consent, "previous": old})
    audit.record(session, actor, audit.Action.CONSENT_RECORD, now, case, {"consent": consent, "previous": old})
    writes.commit(session)
    return case


@command
def share_case(session: Session, env: Env, actor: User, case_id: str, group: Any, purpose: Any,
               now: datetime) -> CaseMember:
    """Share a case beyond its support meeting (e.g. a 重層的支援会議 review). Allowed only
    where the resident gave consent: the meeting's own secrecy (Art. 106-6) covers only
    its members."""
    case = require_case(session, actor, case_id, env.org, via=audit.Action.CASE_SHARE, now=now)
    if not (set(actor.group_ids) & env.org.case_wide_groups or Role.SECRETARIAT in actor.roles
            or Role.COORDINATION_LEAD in actor.roles):
        raise Forbidden("案件を共有できるのは事務局です / only the secretariat may share a case")
    if not isinstance(group, str) or session.get(Group, group) is None:
        raise Invalid(f"グループ {group!r} はありません / unknown group {group!r}", {"group": "unknown group"})
    if not isinstance(purpose, str) or not purpose.strip():
        raise Invalid("目的を入力してください / purpose is required", {"purpose": "required"})
    if case.consent != "given":
        raise Conflict("本人同意が得られていないため、支援会議の構成員以外とは共有できません / "
                       "Sharing beyond the support meeting needs the resident's consent (consent is "
                       f"{case.consent or 'not recorded'})", {"consent": case.consent or "not recorded"})
    member = session.get(CaseMember, (case.id, group))
    if member is None:
        member = CaseMember(case_id=case.id, group_id=group, source=f"shared:{purpose.strip()[:20]}", since=now)
        session.add(member)
    writes.history(session, case, EventKind.CASE_SHARED, now, actor, data={"group": group, "purpose": purpose})
    audit.record(session, actor, audit.Action.CASE_SHARE, now, case, {"group": group, "purpose": purpose})
    writes.commit(session)
    return member


# ---------------------------------------------------------------- queries


@command
def get_case(session: Session, env: Env, actor: User, case_id: str, now: datetime | None = None) -> Case:
    """Read a case the actor may see; the read is audited (and committed)."""
    case = require_case(session, actor, case_id, env.org, now=now)
    audit.record(session, actor, audit.Action.CASE_READ, now or utcnow(), case)
    session.commit()
    return case


def case_history(session: Session, case: Case) -> list[CaseEvent]:
    """The whole history, oldest first: for what must read all of it (checks, exports), never
    for a response, which `history_page` bounds."""
    return list(session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)))


HISTORY_PAGE = 50
HISTORY_PAGE_MAX = 500


@dataclass(frozen=True)
class EventActor:
    """Who wrote a history event, as a page names them."""

    id: int
    name: str
    display_name: str


@dataclass(frozen=True)
class HistoryEvent:
    """One event of a case's history as a page of it shows it (see `history_page`)."""

    id: int
    at: datetime
    kind: str
    step: str | None
    step_name: str | None
    task_id: str | None
    data: dict[str, Any] | None
    actor: EventActor | None


_EVENT_ROWS = CaseEvent.__table__
_EVENT_ACTORS = User.__table__
# A page of history is plain rows with the actor's names joined: ORM objects of the events
# and their actors (each with its groups loaded) cost more than the rest of a case's read.
_HISTORY_PAGE = (select(_EVENT_ROWS.c.id, _EVENT_ROWS.c.at, _EVENT_ROWS.c.kind, _EVENT_ROWS.c.step,
                        _EVENT_ROWS.c.step_name, _EVENT_ROWS.c.task_id, _EVENT_ROWS.c.data, _EVENT_ROWS.c.actor_id,
                        _EVENT_ACTORS.c.name, _EVENT_ACTORS.c.display_name)
                 .select_from(_EVENT_ROWS.outerjoin(_EVENT_ACTORS, _EVENT_ACTORS.c.id == _EVENT_ROWS.c.actor_id)))


def history_page(session: Session, case: Case, *, before: Any = None, limit: Any = HISTORY_PAGE
                 ) -> tuple[list[HistoryEvent], int | None]:
    """The newest `limit` events of the case older than event id `before` (all if None), oldest
    first as `case_history` has them, and the `before` of the page older than these (None when
    there is none): a response about a case stays the same size however old the case is."""
    limit = limits.check_int(limit, "limit", 1, HISTORY_PAGE_MAX)
    stmt = _HISTORY_PAGE.where(_EVENT_ROWS.c.case_id == case.id)
    if before is not None:
        stmt = stmt.where(_EVENT_ROWS.c.id < limits.check_int(before, "before", 1))
    # One row more than asked tells whether an older page exists without counting the history.
    rows = session.execute(stmt.order_by(_EVENT_ROWS.c.id.desc()).limit(limit + 1)).all()
    older = len(rows) > limit
    page = [HistoryEvent(r.id, r.at, r.kind, r.step, r.step_name, r.task_id, r.data,
                         EventActor(r.actor_id, r.name, r.display_name) if r.actor_id is not None else None)
            for r in reversed(rows[:limit])]
    return page, (page[0].id if older else None)


def steps_done(session: Session, case: Case) -> list[tuple[str, str | None]]:
    """(step, step name) of every step the case has been through (task completed or timer fired),
    each once: what the diagram marks as done, bounded by the diagram, not by the case's age."""
    rows = session.execute(
        select(CaseEvent.step, func.max(CaseEvent.step_name))
        .where(CaseEvent.case_id == case.id, CaseEvent.kind.in_((EventKind.TASK_COMPLETED, EventKind.TIMER_FIRED)),
               CaseEvent.step.is_not(None))
        .group_by(CaseEvent.step).order_by(func.min(CaseEvent.id)))
    return [(step, name) for step, name in rows]


def case_open_tasks(session: Session, case: Case) -> list[HumanTask]:
    return list(session.scalars(select(HumanTask).where(HumanTask.case_id == case.id, HumanTask.state == TaskState.OPEN)
                                .order_by(HumanTask.created_at, HumanTask.id)))


def case_timers(session: Session, case: Case) -> list[Timer]:
    return list(session.scalars(select(Timer).where(Timer.case_id == case.id, Timer.status == TimerStatus.PENDING)
                                .order_by(Timer.due_at)))


def linked_cases(session: Session, env: Env, actor: User, case: Case) -> list[tuple[str, Case]]:
    """(relation, case) for each linked case the actor may see."""
    out: list[tuple[str, Case]] = []
    links = list(session.scalars(select(CaseLink).where(or_(CaseLink.from_case_id == case.id,
                                                            CaseLink.to_case_id == case.id)).order_by(CaseLink.id)))
    ends = [("handed_over_to", lk.to_case_id) for lk in links if lk.from_case_id == case.id]
    ends += [("handed_over_from", lk.from_case_id) for lk in links if lk.to_case_id == case.id]
    for relation, other_id in ends:
        other = session.get(Case, other_id)
        if other is not None and can_see_case(session, actor, other, env.org):
            out.append((relation, other))
    return out


def list_tasks(session: Session, actor: User, *, process: str | None = None, step: str | None = None,
               group: str | None = None, limit: int = 500, offset: int = 0) -> list[HumanTask]:
    """Open tasks of the actor's groups and those assigned to the actor (`task_queue_clause`), by due
    date (none last), then age. The page is chosen as the queue page chooses it (engine.casework.queue, from
    the queue index), and only its rows are loaded, with their case's number, never its state."""
    ids = _queue_page_ids(session, actor, process, step, group, limit, offset)
    if not ids:
        return []
    rows = {t.id: t for t in session.scalars(
        select(HumanTask).where(HumanTask.id.in_(ids))
        .options(joinedload(HumanTask.case).load_only(Case.id, Case.number, Case.process_key)))}
    return [rows[i] for i in ids if i in rows]


def _queue_page(actor: User, process: str | None, step: str | None, group: str | None, limit: int,
                offset: int) -> Select[Any]:
    limits.check_int(limit, "limit", 1)
    limits.check_int(offset, "offset")
    return queue.page_statement(actor, process=process or None, step=step or None, group=group or None,
                                limit=limit, offset=offset)


def _queue_page_ids(session: Session, actor: User, process: str | None, step: str | None, group: str | None,
                    limit: int, offset: int) -> list[str]:
    # Core rows, not ORM ones: the ids need no identity map, and a page has up to 1,000 of them.
    return list(session.connection().scalars(_queue_page(actor, process, step, group, limit, offset)))


def task_queue_json(session: Session, actor: User, *, process: str | None = None, step: str | None = None,
                    group: str | None = None, limit: int = 500, offset: int = 0) -> str:
    """The tasks of `list_tasks` as the JSON text of a list of TaskOut objects (an open task:
    never completed), each composed by the database in one statement with the page's choice:
    what the API's queue answers, at a small part of the cost of a Python object and its encoding
    per task."""
    page = _queue_page(actor, process, step, group, limit, offset)
    return "[" + ",".join(session.connection().scalars(_queue_json_statement(page))) + "]"


@functools.lru_cache(maxsize=512)
def _queue_json_statement(page: Select[Any]) -> Select[Any]:
    # Keyed on the page statement, which engine.casework.queue caches per reader and filters: a
    # statement built afresh costs as much as a tenth of the answer.
    # The assignee's name by a lookup per row: as a join, SQLite's planner may scan a small users
    # table once per task instead.
    chosen = page.subquery("page")
    assignee = select(User.name).where(User.id == HumanTask.assignee_id).scalar_subquery()
    return (select(sqljson.json_object(
        id=HumanTask.id, case_id=HumanTask.case_id, case_number=Case.number, process=HumanTask.process_key,
        step=HumanTask.step, name=HumanTask.name, group=HumanTask.group_id, assignee=assignee,
        form=HumanTask.form_key, state=HumanTask.state, created_at=sqljson.iso_utc(HumanTask.created_at),
        due_at=sqljson.iso_utc(HumanTask.due_at), completed_at=None, completed_by=None))
        .select_from(chosen).join(HumanTask, sqljson.row_key(HumanTask) == chosen.c.key)
        .join(Case, Case.id == HumanTask.case_id).order_by(*queue.sort_order(HumanTask)))


def case_row(session: Session, env: Env, actor: User, case_id: str, now: datetime | None = None) -> Case:
    """The case for what its page loads besides the page itself (the diagram's marks: which
    steps are done, no personal data). Not an audited read, so one page view is one
    `case.read`; a refusal is still recorded."""
    return require_case(session, actor, case_id, env.org, now=now)


def task_row(session: Session, env: Env, actor: User, task_id: str) -> HumanTask:
    """The task's projection row only (no form data: not an audited read)."""
    return _task_for(session, env, actor, task_id, audit.Action.TASK_READ, None)


@command
def get_task(session: Session, env: Env, actor: User, task_id: str, now: datetime | None = None
             ) -> tuple[HumanTask, dict[str, Any] | None, dict[str, Any]]:
    """The task, its form schema (the variant the case's consent calls for, see
    engine.workflow.annotations), and values to prefill the form with: the saved draft, else what the
    case already knows for the form's fields (e.g. the summary), what its household answers of
    the criteria table's inputs (engine.casework.household.intake_defaults), and the earlier answers its
    `x-tsunagu-prefill` fields offer."""
    row = _task_for(session, env, actor, task_id, audit.Action.TASK_READ, now or utcnow())
    audit.record(session, actor, audit.Action.TASK_READ, now or utcnow(), row.case, {"task_id": row.id, "step": row.step})
    session.commit()
    defn = env.specs.for_case(row.case)
    schema = annotations.for_consent(defn.forms.get(row.form_key), row.case.consent) if row.form_key else None
    if row.draft is not None or row.state != TaskState.OPEN or not schema:
        return row, schema, dict(row.draft or {})
    wf = runtime.load(defn, row.case.state, row.case.serializer_version)
    task = wf.get_task_from_id(uuid.UUID(row.id))
    known = task.data if task is not None else {}
    fields = schema.get("properties", {})
    # A step done again (the next monitoring round, a second meeting) starts empty: its own
    # earlier answers are shown beside the form (`previous_round`), never offered for one
    # click to submit again; a field that asks for an earlier answer (x-tsunagu-prefill) gets it.
    previous = previous_round(session, row)
    own = set(previous.data or {}) if previous is not None else set()
    values = {**household.intake_defaults(session, row.case, schema),
              **{k: v for k, v in known.items() if k in fields and k not in own}}
    return row, schema, annotations.prefill(schema, values, _earlier_answers(session, row.case))


def _earlier_answers(session: Session, case: Case) -> Iterator[dict[str, Any]]:
    """The answers of the case's completed steps, newest first, read only as far as needed."""
    stmt = (select(CaseEvent.data).where(CaseEvent.case_id == case.id, CaseEvent.kind == EventKind.TASK_COMPLETED)
            .order_by(CaseEvent.id.desc()).execution_options(yield_per=20))
    for data in session.scalars(stmt):
        if isinstance(data, dict):
            yield data


def previous_round(session: Session, row: HumanTask) -> CaseEvent | None:
    """The latest completion of the same step of the case before `row`: the previous round."""
    return session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == row.case_id, CaseEvent.step == row.step,
                                CaseEvent.kind == EventKind.TASK_COMPLETED, CaseEvent.task_id != row.id)
        .order_by(CaseEvent.id.desc()).limit(1)).first()


def step_info(env: Env, row: HumanTask) -> StepInfo | None:
    """What the diagram says of a task's step (its name, form, documentation)."""
    return env.specs.for_case(row.case).steps.get(row.step)


def list_cases(session: Session, env: Env, actor: User, now: datetime | None = None, limit: int = 500) -> list[Any]:
    """Cases the actor may see, newest first (rows of what a list shows: `CasePage.cases`);
    listing their summaries is an audited read."""
    return search_cases(session, env, actor, limit=limit, now=now).cases


MAX_CASE_PAGE = 500
MAX_QUERY = 200
MAX_TERMS = 10
CASE_STATUSES = tuple(s.value for s in CaseStatus)
# What a case list shows, never the workflow state (kilobytes a case).
LISTED = (Case.id, Case.number, Case.process_key, Case.status, Case.referring_group_id, Case.summary,
          Case.created_at, Case.updated_at, Case.last_event_at)


@dataclass(frozen=True)
class CurrentStep:
    """What an active case waits at: an open task, a pending timer, a message or signal catch."""

    kind: str
    step: str
    name: str


@dataclass(frozen=True)
class CasePage:
    """`cases`: rows of LISTED (id, number, process_key, status, referring_group_id, summary,
    created_at, updated_at, last_event_at), never the workflow state; `steps` by case id."""

    cases: list[Any]
    total: int
    steps: dict[str, list[CurrentStep]]


def _check_search(session: Session, env: Env, q: Any, status: Any, process: Any, step: Any, group: Any,
                  limit: Any, offset: Any) -> list[str]:
    """The query's normalised terms; a bad parameter is refused naming it."""
    def text(name: str, value: Any, longest: int) -> None:
        if value is not None and (not isinstance(value, str) or len(value) > longest):
            raise Invalid(f"{name} は{longest}文字までの文字列です / {name} must be a string of at most {longest} "
                          "characters", {name: f"at most {longest} characters"})

    text("q", q, MAX_QUERY)
    text("step", step, 100)
    text("process", process, 100)
    text("group", group, 64)
    if status is not None and status not in CASE_STATUSES:
        raise Invalid(f"状態 {status!r} はありません（{', '.join(CASE_STATUSES)}） / unknown status {status!r}",
                      {"status": f"one of {', '.join(CASE_STATUSES)}"})
    if process and session.scalar(select(ProcessDefinition.id).where(ProcessDefinition.process_key == process)
                                  .limit(1)) is None:
        raise Invalid(f"プロセス {process!r} はありません / unknown process {process!r}", {"process": "unknown process"})
    if group and group not in env.org.group_ids():
        raise Invalid(f"グループ {group!r} はありません / unknown group {group!r}", {"group": "unknown group"})
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_CASE_PAGE:
        raise Invalid(f"limit は 1〜{MAX_CASE_PAGE} です / limit must be 1 to {MAX_CASE_PAGE}",
                      {"limit": f"between 1 and {MAX_CASE_PAGE}"})
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= limits.MAX_INT:
        raise Invalid(f"offset は 0〜{limits.MAX_INT} です / offset must be 0 to {limits.MAX_INT}",
                      {"offset": f"between 0 and {limits.MAX_INT}"})
    terms = search.normalize(q or "").split()
    if len(terms) > MAX_TERMS:
        raise Invalid(f"検索語は{MAX_TERMS}語までです / at most {MAX_TERMS} search words", {"q": f"at most {MAX_TERMS} words"})
    return terms


def search_cases(session: Session, env: Env, actor: User, *, q: str | None = None, status: str | None = None,
                 process: str | None = None, step: str | None = None, group: str | None = None,
                 limit: int = 50, offset: int = 0, now: datetime | None = None) -> CasePage:
    """Every case the actor may see, whatever its state (active, waiting for a timer, closed),
    newest first, `limit` after the first `offset`, with the total and what each case waits at.

    `q`: every word of it (normalised as the stored text is, engine.casework.search) occurs in the case's
    number, summary or household names and kana; `step`: an open task, pending timer or catch of
    the case is at that step; `group`: the referring group. Listing is an audited read."""
    terms = _check_search(session, env, q, status, process, step, group, limit, offset)
    where = [visible_cases_bulk_clause(actor, env.org)]
    if terms:
        where.append(search.matching(session, terms))
    if status:
        where.append(Case.status == status)
    if process:
        where.append(Case.process_key == process)
    if group:
        where.append(Case.referring_group_id == group)
    if step:
        where.append(Case.id.in_(union(
            select(HumanTask.case_id).where(HumanTask.state == TaskState.OPEN, HumanTask.step == step),
            select(Timer.case_id).where(Timer.status == TimerStatus.PENDING, Timer.step == step),
            select(MessageWait.case_id).where(MessageWait.step == step))))
    order = (Case.created_at.desc(), Case.number.desc())
    total: int | None = None
    if terms:
        # The matches are ordered and counted by id alone (ix_cases_search_listing holds all a
        # match is filtered and ordered by): the total comes with the page (count(*) OVER, taken
        # before LIMIT) from one pass over them, and only the page's rows are read.
        page = session.execute(select(Case.id, func.count().over().label("total")).where(*where)
                               .order_by(*order).limit(limit).offset(offset)).all()
        total = page[0].total if page else None
        rows = session.execute(select(*LISTED).where(Case.id.in_([p.id for p in page]))
                               .order_by(*order)).all() if page else []
    else:
        # The whole list is long: its page is read off the created_at index, and counted apart.
        rows = session.execute(select(*LISTED).where(*where).order_by(*order).limit(limit).offset(offset)).all()
    if total is None:
        # A short page (not past the end) is the last one: the total needs no count of its own.
        if len(rows) < limit and (rows or offset == 0):
            total = offset + len(rows)
        else:
            total = session.scalar(select(func.count()).select_from(Case).where(*where)) or 0
    steps = _current_steps(session, [c.id for c in rows])
    if rows:
        # The search ran in a read transaction: only the audit record takes the write lock (a
        # search of 100,000 cases never holds it), committed before the rows are answered.
        query = {k: v for k, v in {"q": q, "status": status, "process": process, "step": step, "group": group,
                                   "offset": offset}.items() if v}
        begin_write(session)
        audit.record(session, actor, audit.Action.CASE_LIST, now or utcnow(),
                     detail={"cases": [c.number for c in rows], **({"query": query} if query else {})})
    session.commit()
    return CasePage(rows, total, steps)


def _current_steps(session: Session, case_ids: list[str]) -> dict[str, list[CurrentStep]]:
    """What each of the cases waits at, oldest first, read from the rows that mirror the workflows
    (one statement: open tasks, pending timers, message and signal catches)."""
    if not case_ids:
        return {}
    parts = union_all(
        select(HumanTask.case_id, literal(WaitKind.TASK.value).label("kind"), HumanTask.step, HumanTask.name,
               HumanTask.created_at.label("since"))
        .where(HumanTask.case_id.in_(case_ids), HumanTask.state == TaskState.OPEN),
        select(Timer.case_id, literal(WaitKind.TIMER.value), Timer.step, Timer.step_name, Timer.created_at)
        .where(Timer.case_id.in_(case_ids), Timer.status == TimerStatus.PENDING),
        select(MessageWait.case_id, MessageWait.kind, MessageWait.step, MessageWait.step_name, MessageWait.since)
        .where(MessageWait.case_id.in_(case_ids))).subquery()
    out: dict[str, list[CurrentStep]] = {cid: [] for cid in case_ids}
    for r in session.execute(select(parts).order_by(parts.c.since, parts.c.step)):
        out[r.case_id].append(CurrentStep(r.kind, r.step, r.name))
    return out


def count_visible_cases(session: Session, env: Env, actor: User) -> int:
    return session.scalar(select(func.count()).select_from(Case).where(visible_cases_clause(actor, env.org))) or 0


# ---------------------------------------------------------------- incoming messages


@command
def receive_message(session: Session, env: Env, actor: User | None, name: Any, data: Any, correlation: Any,
                    now: datetime, source_name: str | None = None, webhook_id: str | None = None) -> Case:
    """Route one incoming message (see `engine.casework.messages`): a waiting case receives it, or a
    process with a message start event of that name starts a case. From a registered source
    (a webhook) the message's id is recorded in the same transaction, so a replay is refused
    (Conflict) and a refused message leaves no trace; a source tied to a process reaches
    only that process's cases. Returns the case that got it."""
    if actor is not None and not {Role.ADMIN, Role.SECRETARIAT} & set(actor.roles):
        raise Forbidden("メッセージを送れるのは事務局と管理者です / only the secretariat and administrators may send "
                        "messages")
    name, data, correlation = messages.check_message(name, data, correlation)
    source = None
    if source_name is not None:
        # Read again in this transaction: the source may have been removed since its signature was checked.
        source = session.scalar(select(Source).where(Source.name == source_name, Source.active.is_(True)))
        if source is None:
            raise Unauthorized("署名を確認できません / The message's signature, timestamp or source is not valid")
    if source is not None and webhook_id is not None:
        seen = session.scalar(select(InboundMessage.id).where(InboundMessage.source_id == source.id,
                                                               InboundMessage.webhook_id == webhook_id))
        if seen is not None:
            raise Conflict("このメッセージは受信済みです / message already received (webhook-id replayed)",
                           {"webhook-id": "already received"})
    only = source.process_key if source is not None else None
    wait = messages.find_wait(session, name, correlation, only)
    if wait is not None:
        case = session.get(Case, wait.case_id)
        defn, wf = writes.load(env, case)
        try:
            runtime.deliver(wf, wait.task_id, data, correlation, now, env.settings.script_limits)
        except runtime.MessageNotCaught:
            raise Conflict("案件の待ち状態が変わりました。もう一度お試しください / the case stopped waiting for "
                           "this message meanwhile; try again") from None
        except (DomainError, SQLAlchemyError):
            raise
        except Exception as exc:  # noqa: BLE001 - a script or expression of the diagram failed on this message
            raise writes.workflow_failure(exc) from None
        step, step_name = wait.step, wait.step_name
    else:
        process_key = messages.starting_process(session, env, name, only)
        if process_key is None:
            raise messages.NoMatch(f"メッセージ {name!r} を待つ案件も、これで始まるプロセスもありません / no case waits "
                                   f"for message {name!r} with this correlation and no process starts with it",
                                   {"type": "no match"})
        group = _message_group(env, actor, source)
        try:
            case = writes.open_case(session, env, actor, process_key, data, group, now, name, correlation)
        except (DomainError, SQLAlchemyError):
            raise
        except Exception as exc:  # noqa: BLE001 - as above, at the start event
            raise writes.workflow_failure(exc) from None
        defn, wf, step, step_name = None, None, None, None
    # History keeps what the case received (a starting message's data is on case_started
    # already); outbox and audit name the message, never its data or correlation values.
    origin = {"message": name, "source": source.name if source is not None else None}
    writes.history(session, case, EventKind.MESSAGE_RECEIVED, now, actor, step, step_name,
             data={**origin, "correlation": correlation or None, "data": (data or None) if wf is not None else None})
    writes.emit(session, OutboxKind.MESSAGE_RECEIVED, case, now, step=step, **origin)
    if wf is not None:
        writes.sync(session, env, case, defn, wf, actor, now)
    if source is not None and webhook_id is not None:
        session.add(InboundMessage(source_id=source.id, webhook_id=webhook_id, message=name, case_id=case.id,
                                   received_at=now))
    audit.record(session, actor, audit.Action.MESSAGE_RECEIVE, now, case,
                 {**origin, "step": step, "correlation": sorted(correlation)},
                 actor_name=f"source:{source.name}" if source is not None else None)
    try:
        writes.commit(session)
    except IntegrityError:
        session.rollback()  # the same webhook-id committed meanwhile by a concurrent delivery
        raise Conflict("このメッセージは受信済みです / message already received (webhook-id replayed)",
                       {"webhook-id": "already received"}) from None
    return case


def _message_group(env: Env, actor: User | None, source: Source | None) -> str:
    if source is not None:
        return source.group_id
    mine = actor.group_ids if actor is not None else []
    wide = [g for g in mine if g in env.org.case_wide_groups]
    return (wide or mine or [messages.default_group(env.org)])[0]
