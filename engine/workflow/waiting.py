"""What an active case waits for, read from the rows that mirror its workflow (open tasks,
pending timers, message and signal catches), never from the workflow itself: cheap enough
for every case page and API read."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Case, HumanTask, MessageWait, Timer
from engine.status import TaskState, TimerStatus, WaitKind


class Waiting(TypedDict):
    kind: str
    name: str
    step: str
    since: datetime
    detail: dict[str, Any] | None


def case_waiting(session: Session, case: Case, open_tasks: Iterable[HumanTask] | None = None,
                 pending_timers: Iterable[Timer] | None = None) -> list[Waiting]:
    """[{kind: task|timer|message|signal, name, step, since, detail}], oldest first. `detail`:
    a timer's due time, a message catch's expected correlation property names. A caller that has
    already read the case's open tasks or pending timers passes them, and they are not read again."""
    out: list[Waiting] = []
    if open_tasks is None:
        open_tasks = session.scalars(select(HumanTask).where(HumanTask.case_id == case.id,
                                                             HumanTask.state == TaskState.OPEN))
    for t in open_tasks:
        out.append(Waiting(kind=WaitKind.TASK, name=t.name, step=t.step, since=t.created_at,
                           detail={"task_id": t.id, "group": t.group_id}))
    if pending_timers is None:
        pending_timers = session.scalars(select(Timer).where(Timer.case_id == case.id,
                                                             Timer.status == TimerStatus.PENDING))
    for t in pending_timers:
        out.append(Waiting(kind=WaitKind.TIMER, name=t.step_name, step=t.step, since=t.created_at,
                           detail={"due_at": t.due_at.isoformat()}))
    for w in session.scalars(select(MessageWait).where(MessageWait.case_id == case.id)):
        detail = {"message" if w.kind == WaitKind.MESSAGE else "signal": w.name}
        if w.kind == WaitKind.MESSAGE:
            detail["correlation"] = sorted(w.correlation) if w.correlation is not None else None
        out.append(Waiting(kind=w.kind, name=w.step_name, step=w.step, since=w.since, detail=detail))
    return sorted(out, key=lambda w: (w["since"], w["kind"], w["step"]))
