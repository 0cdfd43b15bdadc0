"""Who may see a case and its tasks (支援会議 confidentiality): the referring agency, the
secretariat and its lead, and groups named in the case's support meeting. Anyone else is
told the case does not exist."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from engine.casework import cases
from engine.errors import Forbidden, NotFound
from engine.models import User
from tests.conftest import Personas
from tests.engine.support import ASSESSMENT, MONITORING_ROUND, Driver, intake, meeting, plan


def as_user(driver: Driver, who: User) -> tuple[Session, User]:
    s = driver.factory()
    return s, driver.user(s, who)


def eligible_case(driver: Driver, personas: Personas) -> str:
    case_id = driver.start(personas.caseworker)
    driver.complete_step(personas.caseworker, case_id, "intake", intake())
    return case_id


def test_outsider_gets_not_found_for_the_case_and_its_tasks(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = eligible_case(driver, personas)
    task = driver.task(case_id, "assessment")
    done = driver.completions(case_id)[0].task_id
    assert done is not None
    now = driver.clock.now()
    s, outsider = as_user(driver, p.outsider)
    with s:
        with pytest.raises(NotFound):
            cases.get_case(s, driver.env, outsider, case_id)
        for task_id in (task.id, done, "no-such-task"):
            with pytest.raises(NotFound):
                cases.get_task(s, driver.env, outsider, task_id)
        s.rollback()
        for action in (
            lambda: cases.complete_task(s, driver.env, outsider, task.id, ASSESSMENT, now),
            lambda: cases.claim_task(s, driver.env, outsider, task.id, now),
            lambda: cases.save_draft(s, driver.env, outsider, task.id, {"assessment": "x"}, now),
            lambda: cases.release_task(s, driver.env, outsider, task.id, now),
        ):
            with pytest.raises(NotFound):
                action()
            s.rollback()
        assert cases.count_visible_cases(s, driver.env, outsider) == 0
        assert cases.list_tasks(s, outsider) == []
    # Nothing the outsider tried left a trace on the case.
    assert driver.task_row(task.id).assignee_id is None
    assert driver.task_row(task.id).draft is None
    assert driver.open_steps(case_id) == ["assessment"]


def test_not_found_and_missing_case_look_the_same(driver: Driver, personas: Personas) -> None:
    case_id = eligible_case(driver, personas)
    s, outsider = as_user(driver, personas.outsider)
    with s:
        with pytest.raises(NotFound) as hidden:
            cases.get_case(s, driver.env, outsider, case_id)
        with pytest.raises(NotFound) as missing:
            cases.get_case(s, driver.env, outsider, "00000000-0000-0000-0000-000000000000")
    assert (hidden.value.message, hidden.value.status) == (missing.value.message, missing.value.status)


def test_referring_agency_secretariat_and_lead_see_the_case(driver: Driver, personas: Personas) -> None:
    case_id = eligible_case(driver, personas)
    for who in (personas.caseworker, personas.secretariat, personas.supervisor, personas.lead):
        s, user = as_user(driver, who)
        with s:
            assert cases.get_case(s, driver.env, user, case_id).id == case_id
            assert cases.count_visible_cases(s, driver.env, user) == 1


def test_meeting_participant_gets_access_once_named(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = eligible_case(driver, personas)
    driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, case_id, "plan", plan())
    meeting_task = driver.task(case_id, "meeting")

    s, elder = as_user(driver, p.elder_care)
    with s:
        with pytest.raises(NotFound):
            cases.get_case(s, driver.env, elder, case_id)
        with pytest.raises(NotFound):
            cases.get_task(s, driver.env, elder, meeting_task.id)
        assert cases.count_visible_cases(s, driver.env, elder) == 0

    driver.complete_step(p.secretariat, case_id, "meeting", meeting("choju-anshin", "kurashi-shien"))

    s, elder = as_user(driver, p.elder_care)
    with s:
        assert cases.get_case(s, driver.env, elder, case_id).id == case_id
        assert cases.count_visible_cases(s, driver.env, elder) == 1
        assert cases.get_task(s, driver.env, elder, meeting_task.id)[0].id == meeting_task.id
        assert [e.step for e in cases.case_history(s, cases.get_case(s, driver.env, elder, case_id))
                if e.kind == "task_completed"] == ["intake", "assessment", "plan", "meeting"]
        # Seeing the case does not make the secretariat's tasks theirs.
        assert cases.list_tasks(s, elder) == []
    # The outsider, not named, still sees nothing.
    s, outsider = as_user(driver, p.outsider)
    with s, pytest.raises(NotFound):
        cases.get_case(s, driver.env, outsider, case_id)


def test_participant_may_read_but_not_work_on_secretariat_tasks(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = eligible_case(driver, personas)
    driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, case_id, "plan", plan("P1D"))
    driver.complete_step(p.secretariat, case_id, "meeting", meeting("choju-anshin"))
    driver.clock.advance(days=2)
    assert driver.fire() == 1
    task = driver.task(case_id, "monitoring")
    s, elder = as_user(driver, p.elder_care)
    with s:
        assert cases.get_task(s, driver.env, elder, task.id)[0].id == task.id
        s.rollback()
        with pytest.raises(Forbidden):
            cases.complete_task(s, driver.env, elder, task.id, {"next": "close", "progress": "x"},
                                driver.clock.now())
        s.rollback()
        with pytest.raises(Forbidden):
            cases.claim_task(s, driver.env, elder, task.id, driver.clock.now())
    assert driver.open_steps(case_id) == MONITORING_ROUND


def test_queues_hold_only_the_tasks_of_ones_own_groups(driver: Driver, personas: Personas) -> None:
    p = personas
    # One case waiting at intake (the referring agency), one at assessment (secretariat),
    # one at advice (the coordination lead).
    at_intake = driver.start(p.caseworker)
    at_assessment = eligible_case(driver, personas)
    at_advice = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, at_advice, "intake", intake(
        multiple_targets=False, all_targets_have_lead_department=True, lead_department_can_handle_alone=True,
        coordination_problem=False))
    own_case = driver.start(p.outsider)

    def queue(who: User) -> set[tuple[str, str]]:
        s, user = as_user(driver, who)
        with s:
            return {(t.case_id, t.step) for t in cases.list_tasks(s, user)}

    assert queue(p.outsider) == {(own_case, "intake")}
    assert queue(p.caseworker) == {(at_intake, "intake")}
    assert queue(p.secretariat) == {(at_assessment, "assessment")}
    assert queue(p.supervisor) == {(at_assessment, "assessment")}
    assert queue(p.lead) == {(at_advice, "advice")}
    assert queue(p.elder_care) == set()

    # A task claimed by someone is in their queue; filters narrow the queue.
    task = driver.task(at_assessment, "assessment")
    with driver.factory() as s:
        cases.claim_task(s, driver.env, driver.user(s, p.secretariat), task.id, driver.clock.now())
    s, sec = as_user(driver, p.secretariat)
    with s:
        assert [t.id for t in cases.list_tasks(s, sec, step="assessment")] == [task.id]
        assert cases.list_tasks(s, sec, step="intake") == []
        assert cases.list_tasks(s, sec, process="emergency") == []
        assert [t.id for t in cases.list_tasks(s, sec, group="secretariat")] == [task.id]


def test_starting_a_case_for_another_agency_is_forbidden(driver: Driver, personas: Personas) -> None:
    s, outsider = as_user(driver, personas.outsider)
    with s, pytest.raises(Forbidden):
        cases.start_case(s, driver.env, outsider, "multi_agency", {"summary": "相談"}, "hokatsu-center", driver.clock.now())
    # The secretariat (a case-wide group) may open a case on a referring agency's behalf.
    case_id = driver.start(personas.supervisor, group="hokatsu-center")
    assert driver.case(case_id).referring_group_id == "hokatsu-center"
    assert driver.task(case_id, "intake").group_id == "hokatsu-center"
