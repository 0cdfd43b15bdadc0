"""The case's print view (`/cases/<id>/print`): what staff bring to a support meeting, on A4.

The URL carries the case's opaque id only and the title the case number, never a resident's
name; access and audit are the case page's (engine.case_record).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, g, render_template

from engine import case_record, users
from web.extensions import db, engine_env, now
from web.ui import csrf, errors, forms
from web.ui.auth import load_actor, login_required
from web.ui.i18n import JST, MESSAGES

bp = Blueprint("ui_print", __name__)
bp.before_request(load_actor)
bp.before_request(csrf.protect)
errors.install(bp)

MESSAGES.update({
    "print_title": ("案件の記録（印刷用）", "Case record (for printing)"),
    "print_button": ("印刷する", "Print"),
    "print_open": ("印刷用の記録", "Printable record"),
    "print_back": ("案件に戻る", "Back to the case"),
    "print_lead": ("支援会議に持参する記録です。個人情報を含みます。取扱いに注意し、会議後は回収・廃棄してください。",
                   "The record to bring to a support meeting. It holds personal data: handle it with care and "
                   "collect or destroy the copies after the meeting."),
    "print_printed": ("印刷 {at}（{name}）", "Printed {at} by {name}"),
    "print_case": ("案件の概要", "The case"),
    "print_case_number": ("案件番号", "Case number"),
    "print_status": ("状態", "Status"),
    "print_household": ("世帯", "Household"),
    "print_household_none": ("世帯員は登録されていません。", "No household members are recorded."),
    "print_member_name": ("氏名", "Name"),
    "print_member_kana": ("ふりがな", "Kana"),
    "print_member_relation": ("続柄", "Relation"),
    "print_member_birth": ("生年月日（年齢）", "Born (age)"),
    "print_member_sex": ("性別", "Sex"),
    "print_member_attributes": ("属性", "Attributes"),
    "print_member_department": ("担当部局", "Department"),
    "print_plan": ("支援プラン", "Support plan"),
    "print_plan_none": ("支援プランはまだ作成されていません。", "No support plan has been made yet."),
    "print_roles": ("役割分担（誰が何をするか）", "Roles (who does what)"),
    "print_roles_none": ("役割分担はまだ決まっていません（支援会議で決定します）。",
                         "No roles yet: the support meeting decides them."),
    "print_role_group": ("機関", "Agency"),
    "print_role_role": ("役割", "Role"),
    "print_meetings": ("支援会議の記録", "Support meetings"),
    "print_meetings_none": ("支援会議の記録はまだありません。", "No support meeting has been held yet."),
    "print_recorded": ("記録 {at}（{name}）", "Recorded {at} by {name}"),
    "print_age": ("{n}歳", "{n}"),
    "print_attr_elderly": ("高齢", "Elderly"),
    "print_attr_disability": ("障害", "Disability"),
    "print_attr_child": ("子ども", "Child"),
    "print_attr_poverty": ("生活困窮", "Hardship"),
    "print_sex_male": ("男性", "Male"),
    "print_sex_female": ("女性", "Female"),
    "print_sex_other": ("他", "Other"),
})


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
