"""engine.casework.household: replacing a case's household in one transaction (members, history, audit,
search text), who may, ages on the city's date, and the 図4 inputs a household answers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from engine.casework import cases, household, search
from engine.errors import Forbidden, Invalid, NotFound
from engine.models import AuditRecord, Case, CaseEvent, HouseholdMember
from engine.status import EventKind
from tests.engine.test_concurrency import race

MOTHER = {"name": "山田 花子", "kana": "ヤマダ ハナコ", "birth_date": "1948-03-10", "relation": "本人",
          "attributes": ["elderly"], "department": "choju-anshin"}
SON = {"name": "山田 太郎", "kana": "ﾔﾏﾀﾞ ﾀﾛｳ", "relation": "子", "attributes": ["poverty"]}


@pytest.fixture
def case(session, env, personas, clock) -> Case:  # noqa: ANN001
    return cases.start_case(session, env, personas.caseworker, "multi_agency", {"summary": "母と息子"}, None,
                            clock.now())


def counts(session, case: Case) -> tuple[int, int, int]:  # noqa: ANN001
    members = session.scalar(select(func.count()).where(HouseholdMember.case_id == case.id))
    events = session.scalar(select(func.count()).where(CaseEvent.case_id == case.id,
                                                       CaseEvent.kind == EventKind.HOUSEHOLD_CHANGED))
    audits = session.scalar(select(func.count()).where(AuditRecord.case_id == case.id,
                                                       AuditRecord.action == "household.change"))
    return members, events, audits


def test_a_replacement_writes_members_history_audit_and_search_text_together(session, env, personas, clock,
                                                                            case) -> None:  # noqa: ANN001
    version = case.version
    household.replace(session, env, personas.caseworker, case.id, {"members": [MOTHER, SON]}, clock.now())
    assert counts(session, case) == (2, 1, 1)
    text = session.scalar(select(Case.search_text).where(Case.id == case.id))
    assert text == search.current_text(session, case)
    assert search.normalize("やまだ たろう") in text and "山田 花子" in text
    # A household edit never collides with a step being completed at the same time.
    assert session.scalar(select(Case.version).where(Case.id == case.id)) == version
    household.replace(session, env, personas.caseworker, case.id, {"members": [SON]}, clock.now())
    assert counts(session, case) == (1, 2, 2)
    assert "山田 花子" not in session.scalar(select(Case.search_text).where(Case.id == case.id))


def test_a_refused_replacement_leaves_everything_as_it_was(session, env, personas, clock, case) -> None:  # noqa: ANN001
    household.replace(session, env, personas.caseworker, case.id, {"members": [MOTHER]}, clock.now())
    text = session.scalar(select(Case.search_text).where(Case.id == case.id))
    with pytest.raises(Invalid) as refused:
        household.replace(session, env, personas.caseworker, case.id,
                          {"members": [SON, {**SON, "birth_date": "10/03/1948", "phone": "abc"}]}, clock.now())
    assert set(refused.value.fields) == {"members.1.birth_date", "members.1.phone"}
    assert counts(session, case) == (1, 1, 1)
    assert session.scalar(select(Case.search_text).where(Case.id == case.id)) == text


def test_outsiders_are_told_the_case_does_not_exist(session, env, personas, clock, case) -> None:  # noqa: ANN001
    for attempt in (lambda: household.get(session, env, personas.outsider, case.id, clock.now()),
                    lambda: household.replace(session, env, personas.outsider, case.id, {"members": []}, clock.now())):
        with pytest.raises(NotFound):
            attempt()
    assert counts(session, case) == (0, 0, 0)


def test_a_group_the_case_was_shared_with_reads_but_may_not_change(session, env, personas, clock, case) -> None:  # noqa: ANN001
    household.replace(session, env, personas.caseworker, case.id, {"members": [MOTHER]}, clock.now())
    cases.record_consent(session, env, personas.caseworker, case.id, "given", clock.now())
    cases.share_case(session, env, personas.secretariat, case.id, "wakamono-sodan", "評価", clock.now())
    assert [m.name for m in household.get(session, env, personas.outsider, case.id, clock.now())] == ["山田 花子"]
    with pytest.raises(Forbidden):
        household.replace(session, env, personas.outsider, case.id, {"members": []}, clock.now())
    assert counts(session, case) == (1, 1, 1)


def test_age_counts_full_years_on_the_citys_date() -> None:
    member = household.Member(name="x", birth_date=date(2000, 2, 29))
    assert member.age(date(2001, 2, 28)) == 0
    assert member.age(date(2001, 3, 1)) == 1
    assert member.age(date(2024, 2, 29)) == 24
    assert household.Member(name="x").age(date(2026, 1, 1)) is None


def test_a_birth_date_after_the_citys_today_is_refused(session, env, personas, clock, case) -> None:  # noqa: ANN001
    clock.set(datetime(2026, 4, 1, 15, 30, tzinfo=UTC))  # already 2 April in Japan
    household.replace(session, env, personas.caseworker, case.id,
                      {"members": [{"name": "赤ちゃん", "birth_date": "2026-04-02"}]}, clock.now())
    with pytest.raises(Invalid) as refused:
        household.replace(session, env, personas.caseworker, case.id,
                          {"members": [{"name": "赤ちゃん", "birth_date": "2026-04-03"}]}, clock.now())
    assert set(refused.value.fields) == {"members.0.birth_date"}


def test_values_are_trimmed_and_attributes_kept_in_the_vocabularys_order(session, env, personas, clock,
                                                                        case) -> None:  # noqa: ANN001
    (member,) = household.replace(session, env, personas.caseworker, case.id, {"members": [
        {"name": "  山田\u3000花子 ", "attributes": ["poverty", "elderly", "poverty"], "sex": "", "department": ""}]},
        clock.now())
    assert member.name == "山田 花子" and member.attributes == ("elderly", "poverty")
    assert member.sex is None and member.department is None and member.kana == ""


@pytest.mark.parametrize(("members", "expected"), [
    ([], {}),
    ([household.Member(name="母", relation="本人", department="choju-anshin")],
     {"multiple_targets": False, "all_targets_have_lead_department": True}),
    ([household.Member(name="母", relation="本人", department="choju-anshin"),
      household.Member(name="子", relation="子", attributes=("child",), department="kodomo-sodan")],
     {"multiple_targets": True, "all_targets_have_lead_department": True}),
    ([household.Member(name="母", relation="本人", department="choju-anshin"),
      household.Member(name="子", relation="子", attributes=("disability",))],
     {"multiple_targets": True, "all_targets_have_lead_department": False}),
    ([household.Member(name="母", relation="母")], {}),
])
def test_the_criteria_inputs_a_household_answers(members, expected) -> None:  # noqa: ANN001
    assert household.criteria_inputs(members) == expected


def test_a_form_that_does_not_ask_the_criteria_gets_no_defaults(session, case) -> None:  # noqa: ANN001
    session.add(HouseholdMember(case_id=case.id, position=0, name="母", kana="", relation="本人", attributes=[],
                                updated_at=case.created_at))
    session.commit()
    assert household.intake_defaults(session, case, {"properties": {"summary": {}}}) == {}
    assert household.intake_defaults(session, case, {"properties": {"multiple_targets": {}}}) == {
        "multiple_targets": False}


def test_two_replacements_at_once_leave_one_of_the_two_lists(driver, session_factory, env, personas, clock,
                                                             case) -> None:  # noqa: ANN001
    """Each deletes the rows it sees and inserts its own: without the case row's lock, PostgreSQL's
    second writer would not see the first one's rows, and the household would hold both lists."""
    lists = {personas.caseworker.id: [MOTHER, SON], personas.secretariat.id: [{**SON, "name": "山田 次郎"}]}
    for _ in range(5):
        results = race(driver, list(lists), lambda s, user: household.replace(
            s, env, user, case.id, {"members": lists[user.id]}, clock.now()))
        assert not [r for r in results if isinstance(r, Exception)], results
        with session_factory() as s:
            names = list(s.scalars(select(HouseholdMember.name).where(HouseholdMember.case_id == case.id)
                                   .order_by(HouseholdMember.position)))
        assert names in (["山田 花子", "山田 太郎"], ["山田 次郎"])
