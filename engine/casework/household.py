"""The household (世帯) of a case: the persons concerned, read and replaced as a whole.

A household is the list of its members in the order entered (本人 first, usually). It is
personal data: read under the case's access rules (a read is audited, `household.read`) and
changed only by those who may edit the case (`engine.security.access.may_edit_case`); a change replaces
the whole list in one write transaction with its audit record, a history row on the case and
the case's search text (`engine.casework.search.reindex`). Bad input is refused naming each field
(`members.2.birth_date`) and changes nothing.

The household also answers two of the criteria table's (図4) inputs, offered as the intake
form's defaults (`intake_defaults`). A member counts as a target of support (支援対象者) when
they are the person concerned (relation 本人), or have one of the attributes (高齢, 障害,
子ども, 生活困窮), or have a responsible department: the others only live in the household.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.casework import search, writes
from engine.clock import city_today
from engine.env import Env
from engine.errors import Forbidden, Invalid
from engine.models import Case, HouseholdMember, User
from engine.ops.db import command
from engine.security import audit
from engine.security.access import may_edit_case, require_case
from engine.status import EventKind, HouseholdAttribute, Sex
from engine.workflow.limits import unstorable_at

MAX_MEMBERS = 30
# Lengths are those of the columns (engine.models.HouseholdMember).
MAX_LENGTH = {"name": 200, "kana": 200, "relation": 32, "address": 400, "phone": 40}
FIELDS = ("name", "kana", "birth_date", "sex", "relation", "attributes", "address", "phone", "department")
# What a read answers beside the fields: sent back in a PUT of what was read, and ignored.
READ_ONLY = ("age",)
SELF = "本人"
EARLIEST_BIRTH = date(1900, 1, 1)
# Digits, spaces, + - ( ) after NFKC (full-width digits and hyphens are the usual ones).
_PHONE = re.compile(r"[0-9+\-() ]+")
# The criteria table's inputs the household answers (processes/intake_criteria.dmn).
MULTIPLE_TARGETS = "multiple_targets"
ALL_HAVE_DEPARTMENT = "all_targets_have_lead_department"


@dataclass(frozen=True)
class Member:
    name: str
    kana: str = ""
    birth_date: date | None = None
    sex: str | None = None
    relation: str | None = None
    attributes: tuple[str, ...] = ()
    address: str | None = None
    phone: str | None = None
    department: str | None = None

    def age(self, today: date) -> int | None:
        """Full years on `today` (the city's date): one's birthday counts from its day."""
        if self.birth_date is None:
            return None
        b = self.birth_date
        return today.year - b.year - ((today.month, today.day) < (b.month, b.day))

    @property
    def is_target(self) -> bool:
        return self.relation == SELF or bool(self.attributes) or self.department is not None

    def to_dict(self, today: date) -> dict[str, Any]:
        return {"name": self.name, "kana": self.kana,
                "birth_date": self.birth_date, "sex": self.sex,
                "relation": self.relation, "attributes": list(self.attributes), "address": self.address,
                "phone": self.phone, "department": self.department, "age": self.age(today)}


# ---------------------------------------------------------------- reading


def members_of(session: Session, case: Case) -> list[Member]:
    """The household as stored, in order; not audited (for a caller whose own read is: the
    case page, recorded as its `case.read`)."""
    rows = session.scalars(select(HouseholdMember).where(HouseholdMember.case_id == case.id)
                           .order_by(HouseholdMember.position, HouseholdMember.id))
    return [Member(name=r.name, kana=r.kana or "", birth_date=r.birth_date, sex=r.sex, relation=r.relation,
                   attributes=tuple(r.attributes or ()), address=r.address, phone=r.phone,
                   department=r.department_id) for r in rows]


@command
def get(session: Session, env: Env, actor: User, case_id: Any, now: datetime) -> list[Member]:
    """The household of a case the actor may see (else NotFound, as for the case); audited."""
    case = require_case(session, actor, case_id, env.org, via=audit.Action.HOUSEHOLD_READ, now=now)
    members = members_of(session, case)
    audit.record(session, actor, audit.Action.HOUSEHOLD_READ, now, case, {"members": len(members)})
    session.commit()
    return members


# ---------------------------------------------------------------- changing


@command
def replace(session: Session, env: Env, actor: User, case_id: Any, body: Any, now: datetime) -> list[Member]:
    """Replace the household of a case with `body` (`{"members": [...]}`); returns it as stored."""
    case = require_case(session, actor, case_id, env.org, via=audit.Action.HOUSEHOLD_CHANGE, now=now)
    if not may_edit_case(session, actor, case, env.org):
        raise Forbidden("この案件の世帯を変更できるのは、つなぎ元・事務局・支援会議の参加機関と作業中の担当者です / "
                        "only the referring agency, the secretariat, the support meeting's agencies and whoever "
                        "works on one of its steps may change a case's household")
    members = parse(body, env.org.group_ids(), city_today(now))
    # Two replacements of the same household queue up on the case row (SQLite: the write lock
    # already does): otherwise, on PostgreSQL, each would delete only the rows it saw and the
    # household would end up as both lists.
    session.execute(select(Case.id).where(Case.id == case.id).with_for_update())
    before = session.scalar(select(HouseholdMember.id).where(HouseholdMember.case_id == case.id).limit(1)) is not None
    session.execute(delete(HouseholdMember).where(HouseholdMember.case_id == case.id)
                    .execution_options(synchronize_session=False))
    session.add_all(HouseholdMember(case_id=case.id, position=i, name=m.name, kana=m.kana, birth_date=m.birth_date,
                                    sex=m.sex, relation=m.relation, attributes=list(m.attributes), address=m.address,
                                    phone=m.phone, department_id=m.department, updated_at=now)
                    for i, m in enumerate(members))
    session.flush()
    search.reindex(session, case)
    # Counts only: the history and the trail say that the household changed, the household
    # itself says what it is.
    detail = {"members": len(members), "targets": sum(m.is_target for m in members), "had_members": before}
    writes.history(session, case, EventKind.HOUSEHOLD_CHANGED, now, actor, data={"members": len(members)})
    audit.record(session, actor, audit.Action.HOUSEHOLD_CHANGE, now, case, detail)
    writes.commit(session)
    return members


def _text(value: Any, field: str, limit: int, faults: dict[str, str], *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            faults[field] = "必須です / required"
        return None
    if not isinstance(value, str):
        faults[field] = "文字列で入力してください / must be a string"
        return None
    text = " ".join(value.split())
    if not text:
        if required:
            faults[field] = "必須です / required"
        return None
    if len(text) > limit:
        faults[field] = f"{limit}文字以内で入力してください / at most {limit} characters"
        return None
    return text


def _birth_date(value: Any, field: str, today: date, faults: dict[str, str]) -> date | None:
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        faults[field] = "日付（例 1950-04-01）で入力してください / must be a date such as 1950-04-01"
        return None
    if not EARLIEST_BIRTH <= day <= today:
        faults[field] = (f"{EARLIEST_BIRTH.isoformat()} から今日までの日付です / must be a date from "
                         f"{EARLIEST_BIRTH.isoformat()} to today")
        return None
    return day


def _member(raw: Any, prefix: str, groups: set[str], today: date, faults: dict[str, str]) -> Member | None:
    if not isinstance(raw, dict):
        faults[prefix] = "世帯員はオブジェクトです / each member must be an object"
        return None
    for key in raw:
        if key not in FIELDS and key not in READ_ONLY:
            faults[f"{prefix}.{str(key)[:40]}"] = "この項目はありません / unknown field"
    name = _text(raw.get("name"), f"{prefix}.name", MAX_LENGTH["name"], faults, required=True)
    kana = _text(raw.get("kana"), f"{prefix}.kana", MAX_LENGTH["kana"], faults) or ""
    birth = _birth_date(raw.get("birth_date"), f"{prefix}.birth_date", today, faults)
    sex = raw.get("sex") or None
    if sex is not None and sex not in list(Sex):
        faults[f"{prefix}.sex"] = f"{', '.join(Sex)} のいずれかです / must be one of {', '.join(Sex)}"
        sex = None
    relation = _text(raw.get("relation"), f"{prefix}.relation", MAX_LENGTH["relation"], faults)
    address = _text(raw.get("address"), f"{prefix}.address", MAX_LENGTH["address"], faults)
    phone = _text(raw.get("phone"), f"{prefix}.phone", MAX_LENGTH["phone"], faults)
    if phone is not None and not _PHONE.fullmatch(unicodedata.normalize("NFKC", phone).replace("ー", "-")):
        faults[f"{prefix}.phone"] = "数字とハイフンで入力してください / digits, spaces, + - ( ) only"
    attributes = raw.get("attributes")
    codes: tuple[str, ...] = ()
    if attributes is not None:
        known = list(HouseholdAttribute)
        if not isinstance(attributes, list) or not all(isinstance(a, str) and a in known for a in attributes):
            faults[f"{prefix}.attributes"] = (f"{', '.join(known)} から選んでください（該当なしは空） / a list of "
                                              f"{', '.join(known)} (empty: none of these)")
        else:
            codes = tuple(a for a in known if a in attributes)  # the vocabulary's order, each once
    department = raw.get("department") or None
    if department is not None and (not isinstance(department, str) or department not in groups):
        faults[f"{prefix}.department"] = "登録されたグループの ID ではありません / not a group id"
        department = None
    if name is None:
        return None
    return Member(name=name, kana=kana, birth_date=birth, sex=sex, relation=relation, attributes=codes,
                  address=address, phone=phone, department=department)


def parse(body: Any, groups: set[str], today: date) -> list[Member]:
    """The members `body` gives, or Invalid naming every field at fault."""
    if not isinstance(body, dict) or not isinstance(body.get("members"), list):
        raise Invalid("members は世帯員の配列です / members must be a list of household members",
                      {"members": "世帯員の配列です / a list of household members"})
    raw_members = body["members"]
    if len(raw_members) > MAX_MEMBERS:
        raise Invalid(f"世帯員は{MAX_MEMBERS}人までです / at most {MAX_MEMBERS} household members",
                      {"members": f"{MAX_MEMBERS}人まで / at most {MAX_MEMBERS}"})
    unstorable = unstorable_at(raw_members, "members")
    if unstorable is not None:
        path, fault = unstorable
        raise Invalid(f"保存できない文字があります / {path} {fault}", {path: fault})
    faults: dict[str, str] = {}
    extra = [k for k in body if k != "members"]
    for key in extra[:10]:
        faults[str(key)[:40]] = "この項目はありません / unknown field"
    members = [_member(raw, f"members.{i}", groups, today, faults) for i, raw in enumerate(raw_members)]
    if faults:
        raise Invalid(f"世帯の入力内容に誤りがあります / Invalid fields: {', '.join(sorted(faults))}", faults)
    return [m for m in members if m is not None]


# ---------------------------------------------------------------- the criteria table's inputs


def criteria_inputs(members: list[Member]) -> dict[str, bool]:
    """What the household says of 図4's first two inputs: several targets in one household, and
    whether each target has a lead department. Nothing when the household names no target."""
    targets = [m for m in members if m.is_target]
    if not targets:
        return {}
    return {MULTIPLE_TARGETS: len(targets) > 1, ALL_HAVE_DEPARTMENT: all(m.department for m in targets)}


def intake_defaults(session: Session, case: Case, schema: dict[str, Any] | None) -> dict[str, bool]:
    """The criteria inputs the household answers, for a form that asks them (by field name, as
    the criteria table names its inputs); the caseworker can still change them."""
    fields = (schema or {}).get("properties") or {}
    if MULTIPLE_TARGETS not in fields and ALL_HAVE_DEPARTMENT not in fields:
        return {}
    return {k: v for k, v in criteria_inputs(members_of(session, case)).items() if k in fields}
