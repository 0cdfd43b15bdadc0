"""The case's print view (`/cases/<id>/print`): what staff bring to a support meeting, on A4.

The URL carries the case's opaque id only and the title the case number, never a resident's
name; access and audit are the case page's (engine.casework.case_record).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, g, render_template

from engine.casework import case_record
from engine.security import users
from web.extensions import db, engine_env, now
from web.ui import csrf, errors, forms
from web.ui.auth import load_actor, login_required
from web.ui.i18n import JST

bp = Blueprint("ui_print", __name__)
bp.before_request(load_actor)
bp.before_request(csrf.protect)
errors.install(bp)


def groups_in_order() -> dict[str, Any]:
    """Groups by id in the order of config/organisation.yaml, as the case page lists them."""
    order = {info.id: i for i, info in enumerate(engine_env().org.groups)}
    return {g_.id: g_ for g_ in sorted(users.list_groups(db.session), key=lambda g_: (order.get(g_.id, len(order)), g_.id))}


def years_between(born: date | None, today: date) -> int | None:
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


@bp.route("/cases/<case_id>/print")
@login_required
def case_print(case_id: str) -> Any:
    env = engine_env()
    record = case_record.case_record(db.session, env, g.actor, case_id, now=now())
    defn = env.specs.for_case(record.case)
    groups = groups_in_order()

    def answers(step: case_record.StepRecord) -> list[forms.Answer]:
        return forms.describe(defn.forms.get(step.form_key), step.data, groups)

    today = now().astimezone(JST).date()
    return render_template(
        "ui/case_print.html", record=record, case=record.case, groups=groups,
        process_name=defn.spec.description or record.case.process_key,
        plan=answers(record.plan) if record.plan else None,
        meetings=[(m, answers(m)) for m in record.meetings],
        ages={m.id: years_between(m.birth_date, today) for m in record.household})
