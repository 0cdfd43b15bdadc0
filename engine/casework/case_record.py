"""The case's record as staff bring it to a support meeting (the print view): the case, its
household, the newest support plan with the roles decided for it (who does what), and every
support meeting's record, from the case's completed steps.

Read under the case's access rules and audited as a case read (detail `print`), as the case page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.clock import utcnow
from engine.env import Env
from engine.models import Case, CaseEvent, HouseholdMember, User
from engine.ops.db import command
from engine.security import audit
from engine.security.access import require_case
from engine.status import EventKind

# The forms whose answers are the plan and a meeting's record (ours, and a designer's copies
# of them deployed under the same keys).
PLAN_FORMS = frozenset({"support_plan"})
MEETING_FORMS = frozenset({"support_meeting"})


@dataclass
class StepRecord:
    step: str
    name: str
    form_key: str
    at: datetime
    by: str  # the display name of who completed it
    data: dict[str, Any]


@dataclass
class CaseRecord:
    case: Case
    household: list[HouseholdMember]
    plan: StepRecord | None
    # the roles of the newest meeting after the plan: [{"group": id, "role": text}]
    roles: list[dict[str, Any]] = field(default_factory=list)
    meetings: list[StepRecord] = field(default_factory=list)  # oldest first
    printed_by: str = ""
    printed_at: datetime | None = None


@command
def case_record(session: Session, env: Env, actor: User, case_id: str, now: datetime | None = None) -> CaseRecord:
    now = now or utcnow()
    case = require_case(session, actor, case_id, env.org, now=now)
    audit.record(session, actor, audit.Action.CASE_READ, now, case, {"view": "print"})
    session.commit()
    steps = env.specs.for_case(case).steps
    completed = []
    for event in session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id,
                                                         CaseEvent.kind == EventKind.TASK_COMPLETED)
                                 .order_by(CaseEvent.id)):
        info = steps.get(event.step or "")
        if info is None or not info.form_key or not isinstance(event.data, dict):
            continue
        completed.append(StepRecord(event.step or "", event.step_name or info.name or "", info.form_key, event.at,
                                    event.actor.display_name if event.actor else "", event.data))
    plans = [r for r in completed if r.form_key in PLAN_FORMS]
    meetings = [r for r in completed if r.form_key in MEETING_FORMS]
    plan = plans[-1] if plans else None
    roles: list[dict[str, Any]] = []
    # the roles in force: the newest meeting's, unless a plan was made after it (not yet decided)
    if meetings and (plan is None or completed.index(meetings[-1]) > completed.index(plan)):
        roles = [r for r in meetings[-1].data.get("roles") or [] if isinstance(r, dict)]
    household = list(session.scalars(select(HouseholdMember).where(HouseholdMember.case_id == case.id)
                                     .order_by(HouseholdMember.position, HouseholdMember.id)))
    return CaseRecord(case, household, plan, roles, meetings, actor.display_name, now)
