"""What the case page shows of the case file beside its steps: the household (世帯) table and
the criteria table's (図4) decision in words; and the messages of those and of the household's
edit page (web.ui.household)."""

from __future__ import annotations

from typing import Any

from flask import g

from engine.casework import household
from engine.clock import city_today
from engine.models import Case
from engine.security.access import may_edit_case
from web.extensions import db, engine_env, now
from web.ui.i18n import has_message, t


def rule_label(rule: str | None) -> str | None:
    """A 図4 rule (column) in words; a rule of a designer's own table is shown by its id."""
    if rule is None:
        return None
    key = f"decision_rule_{rule}"
    return t(key) if has_message(key) else rule


def result_label(result: str | None) -> str | None:
    if result is None:
        return None
    key = f"decision_{result}"
    return t(key) if has_message(key) else result


def case_context(case: Case) -> dict[str, Any]:
    """What the case page shows of the household and the decision: part of its audited case read."""
    members = household.members_of(db.session, case)
    return {
        "household": members, "household_today": city_today(now()),
        "household_editable": may_edit_case(db.session, g.actor, case, engine_env().org),
        "household_targets": sum(m.is_target for m in members),
        "decision_result_label": result_label(case.decision_result),
        "decision_rule_label": rule_label(case.decision_rule),
    }
