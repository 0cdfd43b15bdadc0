"""Turn domain rows into the plain dicts the API schemas dump."""

from __future__ import annotations

from typing import Any

from flask import url_for
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from engine.casework import cases
from engine.env import Env
from engine.models import Case, HumanTask, User
from engine.status import SYSTEM_EVENTS
from engine.workflow import waiting


def _user_name(session: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    loaded = session.identity_map.get(identity_key(User, user_id))
    if loaded is not None and "name" in inspect(loaded).dict:
        return loaded.name
    # Only the name: an ORM load would refresh the whole user and its groups (the command that
    # ran before the render expired every object it did not read again).
    return session.scalar(select(User.name).where(User.id == user_id))


def task(session: Session, row: HumanTask) -> dict[str, Any]:
    return {
        "id": row.id, "case_id": row.case_id, "case_number": row.case.number, "process": row.process_key,
        "step": row.step, "name": row.name, "group": row.group_id, "assignee": _user_name(session, row.assignee_id),
        "form": row.form_key, "state": row.state, "created_at": row.created_at, "due_at": row.due_at,
        "completed_at": row.completed_at, "completed_by": _user_name(session, row.completed_by_id),
    }


def event(e: cases.HistoryEvent) -> dict[str, Any]:
    return {"id": e.id, "at": e.at, "kind": e.kind, "step": e.step, "step_name": e.step_name, "task_id": e.task_id,
            "actor": e.actor.name if e.actor and e.kind not in SYSTEM_EVENTS else None, "data": e.data}


def history(session: Session, row: Case, before: int | None = None,
            limit: int = cases.HISTORY_PAGE) -> dict[str, Any]:
    """A page of the case's history, oldest first, and the link to the page before it (None: the
    page reaches the case's first event)."""
    events, older = cases.history_page(session, row, before=before, limit=limit)
    link = None if older is None else url_for("cases.history", case_id=row.id, before=older, limit=limit)
    return {"history": [event(e) for e in events], "history_next": link}


def case(session: Session, env: Env, actor: User, row: Case) -> dict[str, Any]:
    open_tasks, timers = cases.case_open_tasks(session, row), cases.case_timers(session, row)
    return {
        "id": row.id, "number": row.number, "process": row.process_key, "status": row.status,
        "definition_version": env.specs.for_case(row).version, "version": env.specs.for_case(row).version,
        "referring_group": row.referring_group_id,
        "summary": row.summary, "consent": row.consent, "consent_recorded_at": row.consent_recorded_at,
        "consent_recorded_by": _user_name(session, row.consent_recorded_by_id), "created_at": row.created_at, "updated_at": row.updated_at,
        "completed_at": row.completed_at, "error": row.error,
        "open_tasks": [task(session, t) for t in open_tasks],
        **history(session, row),
        "linked_cases": [
            {"id": c.id, "number": c.number, "process": c.process_key, "status": c.status, "relation": rel}
            for rel, c in cases.linked_cases(session, env, actor, row)
        ],
        "timers": [{"step": t.step, "name": t.step_name, "due_at": t.due_at} for t in timers],
        "waiting": waiting.case_waiting(session, row, open_tasks, timers),
        # The criteria table's (図4) outcome and the rule (column) that gave it; null until decided.
        "decision": {"result": row.decision_result, "rule": row.decision_rule},
        "closure_reason": row.closure_reason,
    }
