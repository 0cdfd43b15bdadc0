"""A supervisor's repairs: retry a case in `error`, move a stuck case's token to another step,
and reassign tasks in bulk. Each is recorded on the case (history) and in the audit trail,
and ends in the one write path (`engine.casework.writes.sync`).

Who: users with the role supervisor, coordination lead or admin (others: Forbidden); the
access rules apply on top (a case the user may not see is NotFound, like the case).

Retry re-runs what failed, from the case's stored state (which is the state before the
failure: the failing transaction was rolled back):
- a timer that failed (its diagram went over its limits) is put back and fired again;
- a task in Spiff's ERROR state (a state brought over by a migration) is reset and run;
- otherwise the failure was at the completion of a user task: that completion is run again
  with what was submitted (kept as the task's draft when it failed), as the submitter.
`data` corrects values first: merged into the failed task's data (the workflow data the
failed step reads; for a form field, into the submission too).
Still failing: WorkflowFailed (422, the element and the message); the case stays in error,
and the new error is recorded.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState as SpiffState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.casework import writes
from engine.env import Env
from engine.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from engine.models import Case, HumanTask, Timer, User
from engine.ops.db import begin_write, command
from engine.security import audit
from engine.security.access import can_see_case, can_work_on, record_denial, require_case
from engine.status import CaseStatus, EventKind, OutboxKind, Role, TaskState, TimerStatus
from engine.workflow import forms, limits, runtime
from engine.workflow.expressions import limit_exceeded

REPAIR_ROLES = frozenset({Role.SUPERVISOR, Role.COORDINATION_LEAD, Role.ADMIN})
MAX_REASON = 1000
MAX_BULK = 200


def may_repair(actor: User) -> bool:
    return bool(REPAIR_ROLES & set(actor.roles))


def _require_role(actor: User) -> None:
    if not may_repair(actor):
        raise Forbidden("この操作ができるのは管理職・連携責任者・管理者です / only supervisors, the coordination lead "
                        "and administrators may do this")


def _check_data(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise Invalid("data は JSON オブジェクトです / data must be a JSON object", {"data": "must be an object"})
    limits.check_depth(data)
    if any(not isinstance(k, str) or not k.isidentifier() or k.startswith("_") for k in data):
        raise Invalid("data のキーは英数字の名前です / data keys must be plain identifiers",
                      {"data": "keys must be identifiers"})
    if len(repr(data)) > writes.MAX_DATA_BYTES:
        raise Invalid("data が大きすぎます / data is too large", {"data": "too large"})
    return data


# ---------------------------------------------------------------- retry


@command
def retry_case(session: Session, env: Env, actor: User, case_id: Any, data: Any, now: datetime,
               task_id: Any = None) -> Case:
    """Re-run the failed step of a case in `error` (see the module's docstring)."""
    _require_role(actor)
    case = require_case(session, actor, case_id, env.org, via=audit.Action.CASE_RETRY, now=now)
    if case.status != CaseStatus.ERROR:
        raise Conflict(f"この案件はエラーではありません（状態: {case.status}） / the case is not in error "
                       f"(it is {case.status})", {"status": case.status})
    data = _check_data(data)
    if task_id is not None and not isinstance(task_id, str):
        raise Invalid("task_id は文字列です / task_id must be a string", {"task_id": "must be a string"})
    defn, wf = writes.load(env, case)
    timers = list(session.scalars(select(Timer).where(Timer.case_id == case.id, Timer.status == TimerStatus.FAILED)))
    completed: HumanTask | None = None
    values: dict[str, Any] = {}
    try:
        if timers:
            step = ", ".join(t.step for t in timers)
            for timer in timers:
                timer.status, timer.attempts, timer.last_error = TimerStatus.PENDING, 0, None
                task = wf.get_task_from_id(uuid.UUID(timer.task_id))
                if data and task is not None:
                    task.data.update(data)
            runtime.run_engine(wf, now, env.settings.script_limits)
        elif runtime.error_tasks(wf):
            step = ", ".join(t.task_spec.bpmn_id for t in runtime.error_tasks(wf))
            for task in runtime.reset_errors(wf):
                if data:
                    task.data.update(data)
            runtime.run_engine(wf, now, env.settings.script_limits)
        else:
            completed, task, values = _failed_completion(session, env, case, defn, wf, data, task_id)
            step = completed.step
            runtime.complete(wf, task, values, now, env.settings.script_limits)
    except SpiffWorkflowException as exc:
        session.rollback()
        failed = writes.workflow_failure(exc)
        # The attempt is on the trail as well, committed with the new error by mark_error.
        begin_write(session)
        audit.record(session, session.get(User, actor.id), audit.Action.CASE_RETRY, now, session.get(Case, case.id),
                     {"corrected": sorted(data), "failed": (failed.fields or {}).get("element") or True})
        writes.mark_error(session, case.id, failed.message if limit_exceeded(exc) else str(exc), now,
                          (failed.fields or {}).get("element"))
        raise failed from None
    for timer in timers:
        task = wf.get_task_from_id(uuid.UUID(timer.task_id))
        if task is None or task.state != SpiffState.WAITING:
            timer.status, timer.fired_at = TimerStatus.FIRED, now
            writes.history(session, case, EventKind.TIMER_FIRED, now, actor, timer.step, timer.step_name,
                           timer.task_id, {"due_at": timer.due_at.isoformat(), "retry": True})
            writes.emit(session, OutboxKind.TIMER_FIRED, case, now, step=timer.step, due_at=timer.due_at.isoformat())
    detail = {"step": step, "corrected": sorted(data) or None, "error": case.error}
    writes.history(session, case, EventKind.CASE_RETRIED, now, actor, data=detail)
    if completed is not None:
        by = completed.assignee_id or actor.id
        completed.state, completed.completed_at, completed.completed_by_id = TaskState.COMPLETED, now, by
        completed.draft = None
        if completed.assignee_id is None:
            completed.assignee_id = by
        writes.add_participants(session, case, values.get("participants"), now)
        writes.history(session, case, EventKind.TASK_COMPLETED, now, session.get(User, by), completed.step,
                       completed.name, completed.id, values)
        writes.emit(session, OutboxKind.TASK_COMPLETED, case, now, task_id=completed.id, step=completed.step,
                    step_name=completed.name)
        writes.sync(session, env, case, defn, wf, actor, now, context=dict(values), handing_group=completed.group_id)
    else:
        writes.sync(session, env, case, defn, wf, actor, now)
    case.error = None
    audit.record(session, actor, audit.Action.CASE_RETRY, now, case, {"step": step, "corrected": sorted(data)})
    writes.commit(session)
    return case


def _failed_completion(session: Session, env: Env, case: Case, defn: Any, wf: Any, data: dict[str, Any],
                       task_id: str | None) -> tuple[HumanTask, Any, dict[str, Any]]:
    """The open task whose completion failed, its Spiff task, and what to complete it with."""
    rows = list(session.scalars(select(HumanTask).where(HumanTask.case_id == case.id,
                                                         HumanTask.state == TaskState.OPEN)))
    if task_id is not None:
        rows = [r for r in rows if r.id == task_id]
        if not rows:
            raise Invalid("この案件にその作業はありません / the case has no such open task",
                          {"task_id": "not an open task of this case"})
    else:
        with_submission = [r for r in rows if r.draft is not None]
        rows = with_submission if len(with_submission) == 1 else rows
    if not rows:
        raise Conflict("再実行する工程がありません / there is nothing to run again: the case has no open task or "
                       "failed timer", {"step": "nothing to retry"})
    if len(rows) > 1:
        raise Invalid("作業が複数あります。task_id で指定してください / the case has several open tasks: say which one "
                      "failed (task_id)", {"task_id": "required when the case has several open tasks"})
    row = rows[0]
    if row.draft is None and not data:
        raise Invalid("失敗した入力が残っていません。data で入力内容を指定してください / what was submitted was not kept: "
                      "give the form's values in data", {"data": "required: no submission was kept"})
    task = wf.get_task_from_id(uuid.UUID(row.id))
    if task is None or task.state != SpiffState.READY:
        raise Conflict("この作業はもう実行できません / the task is no longer ready")
    schema = defn.forms[row.form_key] if row.form_key else {"type": "object"}
    # Corrected values go into the task's data, which the failed step reads; those that are
    # fields of the task's form correct the submission too.
    fields = schema.get("properties", {})
    values = forms.validate(schema, {**(row.draft or {}), **{k: v for k, v in data.items() if k in fields}},
                            env.org.group_ids())
    task.data.update(data)
    return row, task, values


# ---------------------------------------------------------------- move


@command
def move_case(session: Session, env: Env, actor: User, case_id: Any, to_step: Any, reason: Any,
              now: datetime) -> Case:
    """Move the token of a case to the user task `to_step` of its process, with a reason.

    Supported: a case whose token is at one place (one open task, or one timer or message it
    waits at), to any user task of the same process or subprocess; an earlier step is reset
    (Spiff's task reset), a later one is entered as if the flow led there. Refused (422 naming
    `to_step`): an unknown step, not a user task, the step the case is at, and a case at several
    places at once (parallel branches: move them by completing the others first)."""
    _require_role(actor)
    case = require_case(session, actor, case_id, env.org, via=audit.Action.CASE_MOVE, now=now)
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid("理由を入力してください / reason is required", {"reason": "required"})
    if len(reason) > MAX_REASON:
        raise Invalid(f"理由は {MAX_REASON} 文字までです / reason is at most {MAX_REASON} characters",
                      {"reason": f"at most {MAX_REASON} characters"})
    if not isinstance(to_step, str) or not to_step:
        raise Invalid("移動先の工程を指定してください / to_step is required", {"to_step": "required"})
    if case.status == CaseStatus.COMPLETED:
        raise Conflict("終了した案件は移動できません / a completed case cannot be moved", {"status": case.status})
    defn, wf = writes.load(env, case)
    if to_step not in defn.steps:
        raise Invalid(f"工程 {to_step!r} はこのプロセスの作業ではありません / {to_step!r} is not a user task of this "
                      "process", {"to_step": "not a user task of this process"})
    tokens = runtime.current_tokens(wf)
    if len(tokens) != 1:
        raise Invalid("案件が複数の工程に同時にあるため移動できません / the case is at several steps at once (or at none); "
                      "moving it is supported from one step only", {"to_step": "the case is not at exactly one step"})
    (current,) = tokens
    from_step = current.task_spec.bpmn_id
    if from_step == to_step:
        raise Invalid("案件は既にその工程にあります / the case is already at that step", {"to_step": "the current step"})
    if to_step not in current.workflow.spec.task_specs:
        raise Invalid(f"工程 {to_step!r} は現在の工程と同じ（サブ）プロセスにありません / {to_step!r} is not in the "
                      "(sub)process the case is at", {"to_step": "not in the same (sub)process"})
    try:
        runtime.move_token(wf, current, to_step)
        runtime.run_engine(wf, now, env.settings.script_limits)
    except SpiffWorkflowException as exc:
        raise writes.workflow_failure(exc) from None
    name = defn.steps[to_step].name
    from_name = current.task_spec.bpmn_name or from_step
    detail = {"from": from_step, "from_name": from_name, "to": to_step, "to_name": name, "reason": reason.strip()}
    writes.history(session, case, EventKind.CASE_MOVED, now, actor, to_step, name, data=detail)
    writes.sync(session, env, case, defn, wf, actor, now)
    case.error = None
    audit.record(session, actor, audit.Action.CASE_MOVE, now, case, detail)
    writes.commit(session)
    return case


def move_targets(env: Env, case: Case) -> list[tuple[str, str]]:
    """(step, name) of every user task of the case's process, for the case page's move form."""
    return [(step, info.name) for step, info in env.specs.for_case(case).steps.items()]


# ---------------------------------------------------------------- bulk reassignment


def assign_tasks(session: Session, env: Env, actor: User, task_ids: Any, assignee: Any,
                 now: datetime) -> list[dict[str, Any]]:
    """Assign each task to `assignee`, each in a transaction of its own: one refused task does
    not keep the others from being assigned. A result per task, in the order given:
    {"task_id", "ok": true, "case_id", "case_number", "step"} or {"task_id", "ok": false,
    "error": {"code", "message"}} (not_found for a task the caller may not see, as for one
    that does not exist)."""
    _require_role(actor)
    if not isinstance(task_ids, list) or not task_ids or len(task_ids) > MAX_BULK:
        raise Invalid(f"tasks は 1〜{MAX_BULK} 件の作業 ID の配列です / tasks must be a list of 1 to {MAX_BULK} task ids",
                      {"tasks": f"a list of 1 to {MAX_BULK} task ids"})
    if not all(isinstance(t, str) for t in task_ids):
        raise Invalid("作業 ID は文字列です / task ids are strings", {"tasks": "task ids are strings"})
    if not isinstance(assignee, str) or not assignee:
        raise Invalid("担当者を指定してください / assignee is required", {"assignee": "required"})
    actor_id = actor.id
    out = []
    for task_id in dict.fromkeys(task_ids):
        try:
            row = _assign_one(session, env, session.get(User, actor_id), task_id, assignee, now)
        except DomainError as exc:
            out.append({"task_id": task_id, "ok": False, "error": {"code": exc.code, "message": exc.message}})
        else:
            out.append({"task_id": task_id, "ok": True, "case_id": row["case_id"], "case_number": row["case_number"],
                        "step": row["step"]})
    return out


@command
def _assign_one(session: Session, env: Env, actor: User, task_id: str, assignee_name: str,
                now: datetime) -> dict[str, Any]:
    row = session.get(HumanTask, task_id, with_for_update={"of": HumanTask.__table__})
    if row is None:
        raise NotFound("作業が見つかりません / task not found")
    if not (can_see_case(session, actor, row.case, env.org) or can_work_on(actor, row)):
        record_denial(session, actor, row.case, now, {"via": audit.Action.TASK_ASSIGN, "task_id": row.id,
                                                      "step": row.step, "bulk": True})
        raise NotFound("作業が見つかりません / task not found")
    if row.state != TaskState.OPEN:
        raise Conflict(f"この作業は既に {row.state} です / task is already {row.state}")
    user = session.scalar(select(User).where(User.name == assignee_name, User.active.is_(True)))
    if user is None:
        raise Invalid(f"職員 {assignee_name!r} はいません / no user {assignee_name!r}", {"assignee": "unknown user"})
    if row.group_id not in user.group_ids:
        raise Invalid(f"{user.name} はグループ {row.group_id} に所属していません / {user.name} is not a member of group "
                      f"{row.group_id}", {"assignee": "not in the task's group"})
    result = {"case_id": row.case_id, "case_number": row.case.number, "step": row.step}
    if row.assignee_id == user.id:
        session.commit()  # already theirs: nothing to record
        return result
    previous = session.get(User, row.assignee_id) if row.assignee_id else None
    row.assignee_id = user.id
    data = {"assignee": user.name, "previous": previous.name if previous else None, "bulk": True}
    writes.history(session, row.case, EventKind.TASK_ASSIGNED, now, actor, row.step, row.name, row.id, data)
    writes.emit(session, OutboxKind.TASK_CLAIMED, row.case, now, task_id=row.id, step=row.step, by="assignment")
    audit.record(session, actor, audit.Action.TASK_ASSIGN, now, row.case, {"task_id": row.id, "step": row.step, **data})
    session.commit()
    return result
