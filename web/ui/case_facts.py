"""What the case page shows of the case file beside its steps: the household (世帯) table and
the criteria table's (図4) decision in words; and the messages of those and of the household's
edit page (web.ui.household)."""

from __future__ import annotations

from typing import Any

from flask import g

from engine import household
from engine.access import may_edit_case
from engine.clock import city_today
from engine.models import Case
from web.extensions import db, engine_env, now
from web.ui.i18n import MESSAGES, t

MESSAGES.update({
    "household_title": ("世帯", "Household"),
    "household_edit": ("世帯を編集", "Edit the household"),
    "household_edit_title": ("世帯の編集（{number}）", "Edit the household ({number})"),
    "household_edit_lead": ("この案件の本人と世帯員を入力してください。本人を先頭にしてください。生年月日から年齢を表示し、"
                            "属性と担当部局から相談・調整の判定項目（図4）の初期値を計算します。",
                            "The person concerned and the members of their household, the person concerned first. "
                            "Ages are shown from the dates of birth; the attributes and departments give the "
                            "intake's 図4 criteria their first answers."),
    "household_none": ("世帯員は登録されていません。", "No household members are recorded."),
    "household_caption": ("世帯員の一覧", "Household members"),
    "household_member": ("世帯員 {n}", "Member {n}"),
    "household_new_member": ("新しい世帯員", "New member"),
    "household_name": ("氏名", "Name"),
    "household_kana": ("ふりがな", "Reading (kana)"),
    "household_birth_date": ("生年月日", "Date of birth"),
    "household_birth_date_age": ("生年月日（年齢）", "Date of birth (age)"),
    "household_born_aged": ("{born}（{age}歳）", "{born} (age {age})"),
    "household_member_named": ("世帯員 {n}：{name}", "Member {n}: {name}"),
    "household_sex": ("性別", "Sex"),
    "household_sex_none": ("未入力", "Not given"),
    "household_sex_female": ("女性", "Female"),
    "household_sex_male": ("男性", "Male"),
    "household_sex_other": ("その他", "Other"),
    "household_relation": ("続柄", "Relation"),
    "household_relation_help": ("本人、母、子 など。支援の対象となる本人は「本人」としてください。",
                                "本人 (the person concerned), 母 (mother), 子 (child) …"),
    "household_attributes": ("属性", "Attributes"),
    "household_attributes_help": ("該当するものすべて。どれにも当たらない場合は選ばないでください。",
                                  "All that apply; none if none of these."),
    "household_attr_elderly": ("高齢", "Elderly"),
    "household_attr_disability": ("障害", "Disability"),
    "household_attr_child": ("子ども", "Child"),
    "household_attr_poverty": ("生活困窮", "Poverty"),
    "household_attr_none": ("該当なし", "None"),
    "household_department": ("担当部局", "Responsible department"),
    "household_department_none": ("なし", "None"),
    "household_address": ("住所", "Address"),
    "household_phone": ("電話番号", "Phone"),
    "household_remove": ("この世帯員を削除する", "Remove this member"),
    "household_add": ("世帯員を追加", "Add a member"),
    "household_save": ("世帯を保存", "Save the household"),
    "household_saved": ("世帯を保存しました。", "The household was saved."),
    "household_back": ("案件に戻る", "Back to the case"),
    "household_targets": ("支援対象者 {n}人", "{n} target(s) of support"),
    "household_may_not_edit": ("この案件の世帯は閲覧のみできます。", "You may read this case's household, not change it."),
    "ev_household_changed": ("世帯を更新", "Household updated"),
    "household_changed_note": ("世帯員 {n}人", "{n} member(s)"),
    # the criteria table's (図4) decision
    "decision_title": ("対象判定（図4）", "Intake decision (図4)"),
    "decision_pending": ("まだ判定されていません（相談・調整の完了時に判定します）。",
                         "Not decided yet: the criteria table runs when the intake step is completed."),
    "decision_result": ("判定", "Result"),
    "decision_rule": ("該当した図4の列", "The column of 図4 that applied"),
    "decision_eligible": ("対象", "Eligible"),
    "decision_not_eligible": ("対象外（つなぎ元の機関に戻す）", "Not eligible (back to the referring agency)"),
    "decision_consult_only": ("対象外（連携調整の相談は可）", "Not eligible (coordination may still be consulted on)"),
    "decision_rule_Rule_consult_only": (
        "第1列：支援対象者が1人・中心となる担当部局があり、担当部局のみで対応可能。ただし関係機関・部局の連携調整に課題がある",
        "Column 1: one target, a lead department that can handle it alone, but coordination between agencies "
        "is a problem"),
    "decision_rule_Rule_not_eligible": (
        "第1列：支援対象者が1人・中心となる担当部局があり、活用できる制度やサービスがあり担当部局のみで対応可能",
        "Column 1: one target, a lead department, usable schemes: the lead department handles it alone"),
    "decision_rule_Rule_single_several_issues": (
        "第2列：支援対象者が1人・中心となる担当部局がある・複数の課題がある、または活用できる制度やサービスが無い",
        "Column 2: one target with a lead department, several issues or no usable scheme"),
    "decision_rule_Rule_single_no_department": (
        "第3列：支援対象者が1人・担当部局が無い（18〜64歳で生活困窮でない等）",
        "Column 3: one target with no lead department (aged 18-64, not in poverty, …)"),
    "decision_rule_Rule_several_each_department": (
        "第4列：1つの世帯に支援対象者が複数・各々に対応する担当部局がある",
        "Column 4: several targets in one household, each with a department"),
    "decision_rule_Rule_several_someone_without_department": (
        "第5列：1つの世帯に支援対象者が複数・担当部局が無い人がいる",
        "Column 5: several targets in one household, someone without a department"),
})


def rule_label(rule: str | None) -> str | None:
    """A 図4 rule (column) in words; a rule of a designer's own table is shown by its id."""
    if rule is None:
        return None
    key = f"decision_rule_{rule}"
    return t(key) if key in MESSAGES else rule


def result_label(result: str | None) -> str | None:
    if result is None:
        return None
    key = f"decision_{result}"
    return t(key) if key in MESSAGES else result


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
