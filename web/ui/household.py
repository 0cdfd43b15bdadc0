"""The household's (世帯) edit page, which adds a member one row at a time without JavaScript
and removes those ticked; routes of the `ui` blueprint (its table on the case page:
web.ui.case_facts). The domain is engine.casework.household."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from engine.casework import household
from engine.errors import Forbidden, Invalid
from engine.models import Case
from engine.security.access import may_edit_case
from engine.status import HouseholdAttribute, Sex
from web.extensions import db, engine_env, now
from web.ui.auth import login_required
from web.ui.i18n import pick, t
from web.ui.views import ACTION, bp

TEXT_FIELDS = ("name", "kana", "birth_date", "sex", "relation", "address", "phone", "department")
ADD = "add"
SAVE = "save"


def _rows_from(members: list[household.Member]) -> list[dict[str, Any]]:
    return [{"name": m.name, "kana": m.kana, "birth_date": m.birth_date.isoformat() if m.birth_date else "",
             "sex": m.sex or "", "relation": m.relation or "", "address": m.address or "", "phone": m.phone or "",
             "department": m.department or "", "attributes": list(m.attributes), "remove": False} for m in members]


def _rows_posted(form: MultiDict) -> list[dict[str, Any]]:
    """The rows of the posted form, in order; at most one more than a household may hold."""
    rows = []
    for i in range(household.MAX_MEMBERS + 1):
        if f"m-{i}-name" not in form:
            break
        row: dict[str, Any] = {k: form.get(f"m-{i}-{k}", "")[:500] for k in TEXT_FIELDS}
        row["attributes"] = form.getlist(f"m-{i}-attributes")[:len(HouseholdAttribute)]
        row["remove"] = form.get(f"m-{i}-remove") == "1"
        rows.append(row)
    return rows


def _blank(row: dict[str, Any]) -> bool:
    return not any(str(row[k]).strip() for k in TEXT_FIELDS) and not row["attributes"]


def _body(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], list[int]]:
    """The API's body from the rows kept (not removed, not left empty), and each member's row."""
    kept = [i for i, r in enumerate(rows) if not r["remove"] and not _blank(r)]
    members = [{**{k: rows[i][k] or None for k in TEXT_FIELDS}, "kana": rows[i]["kana"],
                "attributes": rows[i]["attributes"]} for i in kept]
    return {"members": members}, kept


def _render(case: Case, rows: list[dict[str, Any]], errors: dict[int, dict[str, str]] | None = None,
            summary: list[str] | None = None, status: int = 200) -> tuple[str, int]:
    env = engine_env()
    groups = [gr for gr in env.org.groups if gr.id not in env.org.case_wide_groups]
    return render_template(
        "ui/household_edit.html", case=case, rows=rows, errors=errors or {}, error_summary=summary or [],
        groups=groups, attributes=list(HouseholdAttribute), sexes=list(Sex), max_members=household.MAX_MEMBERS,
        editable=may_edit_case(db.session, g.actor, case, env.org), ACTION=ACTION), status


@bp.route("/cases/<case_id>/household")
@login_required
def household_page(case_id: str) -> Any:
    members = household.get(db.session, engine_env(), g.actor, case_id, now())
    case = db.session.get(Case, case_id)
    rows = _rows_from(members)
    if not rows:
        rows = [_rows_from([household.Member(name="", relation=household.SELF)])[0]]
    return _render(case, rows)


@bp.route("/cases/<case_id>/household", methods=["POST"])
@login_required
def household_save(case_id: str) -> Any:
    env = engine_env()
    rows = _rows_posted(request.form)
    action = request.form.get(ACTION, "")
    if action == ADD:  # without JavaScript: the same form, one empty row more, nothing saved yet
        household.get(db.session, env, g.actor, case_id, now())  # the page shows the household: a read
        case = db.session.get(Case, case_id)
        if len(rows) < household.MAX_MEMBERS:
            rows.append(_rows_from([household.Member(name="")])[0])
        return _render(case, rows)
    body, kept = _body(rows)
    try:
        household.replace(db.session, env, g.actor, case_id, body, now())
    except (Invalid, Forbidden) as exc:
        db.session.rollback()
        household.get(db.session, env, g.actor, case_id, now())
        case = db.session.get(Case, case_id)
        errors: dict[int, dict[str, str]] = {}
        summary: list[str] = []
        for path, message in (exc.fields or {}).items():
            parts = path.split(".")
            if len(parts) == 3 and parts[0] == "members" and parts[1].isdigit() and int(parts[1]) < len(kept):
                errors.setdefault(kept[int(parts[1])], {})[parts[2]] = pick(message)
            else:
                summary.append(pick(message))
        if not exc.fields:
            summary.append(pick(exc.message))
        return _render(case, rows, errors, summary, exc.status)
    flash(t("household_saved"), "success")
    return redirect(url_for("ui.case", case_id=case_id) + "#household-title")
