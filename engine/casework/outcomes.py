"""What completed steps tell the city's statistics, kept on rows of their own in the step's
transaction: the criteria table's (図4) outcome on the case, why a case ended, the
重層的支援会議 reviews (of the plan at approval, of the evaluation at closure), the
social-resource gaps found at closure and the participation placements.

`check` runs before a step completes (a bad code is refused and nothing changes);
`record` after the workflow moved, before the case is saved."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.casework.vocabulary import codes, load_vocabulary
from engine.env import Env
from engine.errors import Invalid
from engine.models import Case, CaseLink, MeetingReview, Place, Placement, ResourceGap
from engine.status import PlacementStatus
from engine.workflow import runtime
from engine.workflow.limits import MAX_INT

# Which step's which field is the reason a case ended, by process.
CLOSURE_FIELDS: dict[str, dict[str, str]] = {
    "multi_agency": {"closure": "outcome"},
    "outreach": {"close": "close_reason"},
    "emergency": {"end_emergency": "outcome"},
}
# Steps whose completion alone says why the case ends.
CLOSURE_STEPS: dict[tuple[str, str], str] = {("multi_agency", "advice_received"): "returned"}


def check(session: Session, env: Env, case: Case, step: str, data: dict[str, Any]) -> None:
    """Refuse codes the forms' schemas cannot know: gap kinds (config) and places (register)."""
    if case.process_key == "multi_agency" and step == "closure":
        kinds = codes(load_vocabulary(env.settings.config_dir).gap_kinds)
        fields = {f"resource_gaps.{i}.kind": f"社会資源の種類ではありません / not a resource-gap kind: {g.get('kind')!r}"
                  for i, g in enumerate(data.get("resource_gaps") or []) if g.get("kind") not in kinds}
        if fields:
            raise Invalid(f"入力内容に誤りがあります / Invalid fields: {', '.join(sorted(fields))}", fields)
    if case.process_key == "participation" and step == "match":
        place_id = data.get("place_id")
        # Bounded first: a number beyond the column's range is an error of the database, not a miss.
        place = (session.get(Place, place_id) if isinstance(place_id, int) and not isinstance(place_id, bool)
                 and 1 <= place_id <= MAX_INT else None)
        if place is None or not place.active:
            raise Invalid("参加先の登録簿にない参加先です / place_id is not an active place of the register",
                          {"place_id": "参加先の登録簿にありません / not an active place of the register"})


def record(session: Session, env: Env, case: Case, step: str, data: dict[str, Any], wf: Any,
           now: datetime) -> None:
    process = case.process_key
    if case.decision_result is None and process == "multi_agency":
        for _element, result, rule in runtime.decisions(wf, env.settings.script_limits):
            if isinstance(result, str):
                case.decision_result, case.decision_rule, case.decided_at = result, rule, now
    reason = CLOSURE_STEPS.get((process, step))
    field = CLOSURE_FIELDS.get(process, {}).get(step)
    if field and isinstance(data.get(field), str):
        reason = data[field]
    if process == "outreach" and step == "decide" and data.get("next") == "consultation":
        reason = "consultation"
    if reason:
        case.closure_reason = reason[:32]
    if process == "multi_agency" and step == "meeting":
        _review(session, case, "plan", data, "plan_review", now)
    if process == "multi_agency" and step == "closure":
        _review(session, case, "closure", data, "evaluation_review", now)
        for gap in data.get("resource_gaps") or []:
            session.add(ResourceGap(case_id=case.id, kind=gap["kind"], need=gap.get("need", ""), recorded_at=now))
    if process == "participation":
        _placement(session, case, step, data, now)


def finished(session: Session, case: Case) -> None:
    """A case that just completed without a reason of its own: handed over, or plainly ended."""
    if case.closure_reason is None and case.completed_at is not None:
        linked = session.scalar(select(CaseLink.id).where(CaseLink.from_case_id == case.id).limit(1))
        case.closure_reason = "handed_over" if linked is not None else "completed"


def _review(session: Session, case: Case, stage: str, data: dict[str, Any], prefix: str, now: datetime) -> None:
    """The review's fields are `<prefix>_held_on`, `_result` and `_comments`; a result records it."""
    result = data.get(f"{prefix}_result")
    if not isinstance(result, str):
        return
    held = data.get(f"{prefix}_held_on")
    session.add(MeetingReview(case_id=case.id, stage=stage, held_on=date.fromisoformat(held) if isinstance(held, str) else None,
                              result=result, comments=str(data.get(f"{prefix}_comments", "")), recorded_at=now))


def _placement(session: Session, case: Case, step: str, data: dict[str, Any], now: datetime) -> None:
    if step == "match":
        session.add(Placement(case_id=case.id, place_id=data["place_id"], status=PlacementStatus.TRIAL,
                              started_at=now))
        return
    if step != "checkin":
        return
    outcome = {"settle": PlacementStatus.SETTLED, "rematch": PlacementStatus.REMATCHED,
               "end": PlacementStatus.ENDED}.get(data.get("next"))
    if outcome is None:
        return
    current = session.scalars(select(Placement).where(Placement.case_id == case.id,
                                                      Placement.status == PlacementStatus.TRIAL)
                              .order_by(Placement.id.desc()).limit(1)).first()
    if current is not None:
        current.status, current.ended_at = outcome, now
    if outcome != PlacementStatus.REMATCHED:
        case.closure_reason = "settled" if outcome == PlacementStatus.SETTLED else "ended"


def current_placement(session: Session, case: Case) -> tuple[Placement, Place] | None:
    """The latest placement of a participation case and its place (for the case page)."""
    row = session.scalars(select(Placement).where(Placement.case_id == case.id)
                          .order_by(Placement.id.desc()).limit(1)).first()
    return (row, session.get(Place, row.place_id)) if row is not None else None
