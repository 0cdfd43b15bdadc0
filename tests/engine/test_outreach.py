"""The outreach process (アウトリーチ等継続支援) driven through the engine: an arrears
referral, contact attempts spaced by the case's interval (the clock and the timer
sweep), the home visit, and each way out: a linked multi-agency case, a recorded
consultation, or a close with its reason."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.casework import cases
from engine.errors import DeployError, Forbidden, Invalid, NotFound
from engine.models import Case, CaseLink, User
from engine.security import users
from engine.settings import ROOT
from engine.status import CaseStatus, EventKind, TimerStatus
from engine.workflow import specs
from tests.conftest import Personas
from tests.engine.support import Driver, intake

START = datetime(2026, 4, 1, tzinfo=UTC)
# What the tax section's arrears feed sends: a household reference and the arrears, no name.
REFERRAL: dict[str, Any] = {"source": "tax", "household_ref": "H-2026-0412", "amount_yen": 186000,
                            "months_in_arrears": 7}
# The reception's summary as the diagram drafts it from the referral.
SUMMARY = "市税の滞納 7か月・186,000円（世帯番号 H-2026-0412）"
ASSIGN: dict[str, Any] = {"summary": SUMMARY, "attempt_interval": "P7D", "max_attempts": 3, "priority": "normal",
                          "notes": "市民税の滞納が7か月。督促状に応答なし。"}
NOT_REACHED: dict[str, Any] = {"method": "letter", "attempted_on": "2026-04-02", "result": "not_reached",
                               "notes": "相談窓口の案内を送付、返信なし"}
REACHED: dict[str, Any] = {"method": "joint_visit", "joint_group": "nozei", "attempted_on": "2026-04-09",
                           "result": "reached"}
HOME_VISIT: dict[str, Any] = {"visited_on": "2026-04-09", "companions": ["nozei"],
                              "situation": "50代男性の単身世帯。失職後、家賃と公共料金の滞納が続いている。",
                              "needs": ["poverty", "isolation"], "consent": "given"}


class Staff:
    """The people of an outreach case besides the shared personas."""

    def __init__(self, tax: User, worker: User) -> None:
        self.tax = tax  # 納税課: sends the referral, joins the home visit
        self.worker = worker  # 地域共生課 caseworker doing the outreach (not secretariat)


@pytest.fixture
def staff(session, clock) -> Staff:  # noqa: ANN001
    now = clock.now()
    tax = users.add_user(session, "nozei.kobayashi", ["nozei"], ["staff"], now, "小林 徴収")
    worker = users.add_user(session, "kyosei.mori", ["chiiki-kyosei"], ["staff"], now, "森 相談員")
    session.commit()
    return Staff(tax, worker)


def referred(driver: Driver, staff: Staff, personas: Personas, assign: dict[str, Any] | None = None) -> str:
    """A referral from the tax section, accepted by the supervisor and assigned to the
    caseworker: its first contact attempt is open."""
    case_id = driver.start(staff.tax, "outreach", dict(REFERRAL))
    driver.complete_step(personas.supervisor, case_id, "assign", assign or ASSIGN)
    attempt = driver.task(case_id, "attempt")
    with driver.factory() as s:
        cases.assign_task(s, driver.env, driver.user(s, personas.supervisor), attempt.id, staff.worker.name,
                          driver.clock.now())
    return case_id


def reached_and_visited(driver: Driver, staff: Staff, personas: Personas) -> str:
    case_id = referred(driver, staff, personas)
    driver.complete_step(staff.worker, case_id, "attempt", REACHED)
    driver.complete_step(staff.worker, case_id, "home_visit", HOME_VISIT)
    assert driver.open_steps(case_id) == ["decide"]
    return case_id


def test_referral_opens_a_case_at_reception_with_the_default_pace(
        driver: Driver, staff: Staff, personas: Personas) -> None:
    case_id = driver.start(staff.tax, "outreach", dict(REFERRAL))
    case = driver.case(case_id)
    assert case.number == "OR-2026-00001"
    assert case.referring_group_id == "nozei"
    assign = driver.task(case_id, "assign")
    assert (assign.lane, assign.group_id, assign.form_key) == ("アウトリーチ受付", "chiiki-kyosei", "outreach_assign")
    # The referral reached the first task through the message start event, with the
    # default pace the reception may change.
    data = driver.ready_data(case_id, "assign")
    assert {k: data[k] for k in REFERRAL} == REFERRAL
    assert (data["attempt_interval"], data["max_attempts"], data["attempts"]) == ("P7D", 3, 0)
    assert data["summary"] == SUMMARY
    (started,) = driver.history(case_id, EventKind.CASE_STARTED)
    assert started.data == REFERRAL
    driver.check(case_id)


def test_reception_form_prefills_the_default_pace(driver: Driver, staff: Staff, personas: Personas) -> None:
    case_id = driver.start(staff.tax, "outreach", dict(REFERRAL))
    task = driver.task(case_id, "assign")
    with driver.factory() as s:
        _, schema, prefill = cases.get_task(s, driver.env, driver.user(s, personas.supervisor), task.id, START)
    assert schema["title"] == "受付・担当者の決定"
    assert prefill == {"summary": SUMMARY, "attempt_interval": "P7D", "max_attempts": 3}
    driver.complete(personas.supervisor, task.id, {**ASSIGN, "summary": "市税滞納の世帯"})
    assert driver.case(case_id).summary == "市税滞納の世帯"


def test_the_caseworker_given_the_first_attempt_keeps_the_household(
        driver: Driver, staff: Staff, personas: Personas) -> None:
    case_id = referred(driver, staff, personas)
    driver.complete_step(staff.worker, case_id, "attempt", NOT_REACHED)
    driver.clock.advance(days=7, minutes=1)
    assert driver.fire() == 1
    # Each later step of the case goes to whoever made the last contact attempt.
    for step, data in (("attempt", REACHED), ("home_visit", HOME_VISIT), ("decide", {"next": "close"}),
                       ("close", {"close_reason": "not_needed"})):
        task = driver.task(case_id, step)
        assert task.assignee_id == staff.worker.id, step
        driver.complete(staff.worker, task.id, data)
    kept = [e for e in driver.history(case_id, EventKind.TASK_ASSIGNED) if e.data.get("same_as") == "attempt"]
    assert [(e.step, e.actor_id, e.data["assignee"]) for e in kept] == [
        (step, None, staff.worker.name) for step in ("attempt", "home_visit", "decide", "close")]
    assert driver.case(case_id).status == CaseStatus.COMPLETED


def test_a_caseworker_who_left_the_group_does_not_keep_the_household(
        driver: Driver, staff: Staff, personas: Personas) -> None:
    case_id = referred(driver, staff, personas)
    driver.complete_step(staff.worker, case_id, "attempt", REACHED)
    visit = driver.task(case_id, "home_visit")
    assert visit.assignee_id == staff.worker.id
    with driver.factory() as s:
        s.get(User, staff.worker.id).active = False
        s.commit()
        cases.release_task(s, driver.env, driver.user(s, personas.supervisor), visit.id, driver.clock.now())
    driver.complete(personas.supervisor, visit.id, HOME_VISIT)
    # The last attempt's caseworker is gone: the next step waits in the group's queue.
    decide = driver.task(case_id, "decide")
    assert (decide.assignee_id, decide.group_id) == (None, "chiiki-kyosei")


def test_same_assignee_as_an_unknown_step_refuses_the_deployment(driver: Driver, tmp_path: Path) -> None:
    folder = tmp_path / "processes"
    shutil.copytree(ROOT / "processes", folder)
    bpmn = folder / "outreach.bpmn"
    text = bpmn.read_text(encoding="utf-8")
    bpmn.write_text(text.replace('name="sameAssigneeAs" value="attempt"', 'name="sameAssigneeAs" value="visit"', 1),
                    encoding="utf-8")
    with driver.factory() as s, pytest.raises(DeployError) as err:
        specs.deploy(s, specs.read_sources(folder, ROOT / "forms"), driver.env.org, driver.clock.now())
    assert (err.value.element, err.value.file) == ("attempt", "outreach.bpmn")
    assert "visit" in str(err.value)


def test_unreached_household_is_tried_again_after_the_interval_then_connected_to_multi_agency(
        driver: Driver, staff: Staff, personas: Personas) -> None:
    case_id = referred(driver, staff, personas)
    attempt = driver.task(case_id, "attempt")
    assert (attempt.lane, attempt.group_id, attempt.assignee_id) == ("アウトリーチ担当者", "chiiki-kyosei",
                                                                    staff.worker.id)

    driver.complete_step(staff.worker, case_id, "attempt", NOT_REACHED)
    assert driver.open_steps(case_id) == []
    (timer,) = driver.timers(case_id)
    assert (timer.step, timer.step_name, timer.status) == ("wait_next", "次の接触まで待つ（接触の間隔）",
                                                           TimerStatus.PENDING)
    assert timer.due_at == START + timedelta(days=7)
    driver.check(case_id)

    driver.clock.advance(days=6, hours=23)
    assert driver.fire() == 0
    assert driver.open_steps(case_id) == []
    now = driver.clock.advance(hours=1, minutes=1)
    assert driver.fire() == 1
    again = driver.task(case_id, "attempt")
    assert again.created_at == now and again.id != attempt.id
    assert driver.ready_data(case_id, "attempt")["attempts"] == 1
    driver.check(case_id)

    driver.complete(staff.worker, again.id, REACHED)
    assert driver.open_steps(case_id) == ["home_visit"]
    driver.complete_step(staff.worker, case_id, "home_visit", HOME_VISIT)
    assert driver.case(case_id).consent == "given"
    driver.complete_step(staff.worker, case_id, "decide",
                         {"next": "connect", "reason": "家計と就労の支援に複数の機関が必要"})

    origin = driver.case(case_id)
    assert origin.status == CaseStatus.COMPLETED
    with driver.factory() as s:
        (new,) = s.scalars(select(Case).where(Case.process_key == "multi_agency"))
        (link,) = s.scalars(select(CaseLink))
    assert new.number == "MA-2026-00001"
    assert (link.from_case_id, link.to_case_id, link.kind) == (case_id, new.id, "handover")
    # The caseworker who found the need refers the six-step case, not the tax section.
    assert new.referring_group_id == "chiiki-kyosei"
    assert new.consent == "given"
    assert new.summary == f"アウトリーチ {origin.number} からの引継ぎ。家計と就労の支援に複数の機関が必要"
    (started,) = driver.history(new.id, EventKind.CASE_STARTED)
    assert started.data["origin_case"] == {"id": case_id, "number": origin.number, "process": "outreach"}
    assert started.data["outreach"] == {**REFERRAL, "attempts": 2, "visited_on": "2026-04-09",
                                        "situation": HOME_VISIT["situation"], "needs": ["poverty", "isolation"]}
    (linked_to,) = driver.history(case_id, EventKind.CASE_LINKED)
    assert linked_to.data == {"to": new.number, "to_id": new.id}
    (linked_from,) = driver.history(new.id, EventKind.CASE_LINKED)
    assert linked_from.data == {"from": origin.number, "from_id": case_id}
    with driver.factory() as s:
        worker = driver.user(s, staff.worker)
        assert [(r, c.id) for r, c in cases.linked_cases(s, driver.env, worker, s.get(Case, case_id))] == [
            ("handed_over_to", new.id)]
        assert [(r, c.id) for r, c in cases.linked_cases(s, driver.env, worker, s.get(Case, new.id))] == [
            ("handed_over_from", case_id)]

    intake_task = driver.task(new.id, "intake")
    assert (intake_task.lane, intake_task.group_id) == ("つなぎ元", "chiiki-kyosei")
    driver.complete(staff.worker, intake_task.id, intake())
    assert driver.open_steps(new.id) == ["assessment"]
    driver.check(case_id)
    driver.check(new.id)


def test_household_not_reached_after_the_last_attempt_goes_to_a_recorded_close(
        driver: Driver, staff: Staff, personas: Personas) -> None:
    case_id = referred(driver, staff, personas, {"summary": SUMMARY, "attempt_interval": "P3D", "max_attempts": 2})
    driver.complete_step(staff.worker, case_id, "attempt", NOT_REACHED)
    (first,) = driver.timers(case_id)
    assert first.due_at == START + timedelta(days=3)
    driver.clock.advance(days=3, minutes=1)
    assert driver.fire() == 1
    driver.complete_step(staff.worker, case_id, "attempt", {**NOT_REACHED, "method": "visit"})
    # The second failure was the last allowed: no new timer, the close is to be recorded.
    assert driver.open_steps(case_id) == ["close"]
    assert [t.status for t in driver.timers(case_id)] == [TimerStatus.FIRED]
    driver.check(case_id)
    driver.complete_step(staff.worker, case_id, "close", {"close_reason": "unreachable", "note": "2回とも不在"})
    case = driver.case(case_id)
    assert case.status == CaseStatus.COMPLETED
    assert [e.step for e in driver.completions(case_id)] == ["assign", "attempt", "attempt", "close"]
    assert driver.history(case_id, EventKind.CASE_LINKED) == []
    with driver.factory() as s:
        assert list(s.scalars(select(Case).where(Case.process_key == "multi_agency"))) == []
    driver.check(case_id)


def test_visited_household_closed_with_its_reason(driver: Driver, staff: Staff, personas: Personas) -> None:
    case_id = reached_and_visited(driver, staff, personas)
    driver.complete_step(staff.worker, case_id, "decide", {"next": "close", "reason": "転居予定"})
    assert driver.open_steps(case_id) == ["close"]
    driver.complete_step(staff.worker, case_id, "close", {"close_reason": "moved", "note": "市外へ転居"})
    assert driver.case(case_id).status == CaseStatus.COMPLETED
    (closed,) = [e for e in driver.completions(case_id) if e.step == "close"]
    assert closed.data == {"close_reason": "moved", "note": "市外へ転居"}
    driver.check(case_id)


def test_visited_household_connected_to_a_consultation_ends_without_a_new_case(
        driver: Driver, staff: Staff, personas: Personas) -> None:
    case_id = reached_and_visited(driver, staff, personas)
    driver.complete_step(staff.worker, case_id, "decide",
                         {"next": "consultation", "consultation_group": "kurashi-shien",
                          "consultation": "くらし再建の相談につないだ"})
    assert driver.case(case_id).status == CaseStatus.COMPLETED
    assert driver.count(CaseLink) == 0
    assert [e.step for e in driver.completions(case_id)] == ["assign", "attempt", "home_visit", "decide"]
    driver.check(case_id)


def test_contact_attempt_with_a_bad_method_is_refused_and_moves_nothing(
        driver: Driver, staff: Staff, personas: Personas) -> None:
    case_id = referred(driver, staff, personas)
    attempt = driver.task(case_id, "attempt")
    with pytest.raises(Invalid) as err:
        driver.complete(staff.worker, attempt.id, {"method": "email", "result": "maybe", "joint_group": "nowhere"})
    assert set(err.value.fields) == {"method", "result", "joint_group"}
    assert driver.open_steps(case_id) == ["attempt"]
    assert driver.timers(case_id) == []
    driver.check(case_id)


def test_reception_refuses_a_pace_that_is_not_a_duration(driver: Driver, staff: Staff, personas: Personas) -> None:
    case_id = driver.start(staff.tax, "outreach", dict(REFERRAL))
    task = driver.task(case_id, "assign")
    with pytest.raises(Invalid) as err:
        driver.complete(personas.supervisor, task.id, {"attempt_interval": "weekly", "max_attempts": 0})
    assert set(err.value.fields) == {"summary", "attempt_interval", "max_attempts"}
    assert driver.open_steps(case_id) == ["assign"]


def test_no_form_of_the_process_asks_for_a_name(driver: Driver, staff: Staff, personas: Personas) -> None:
    # Arrears data carries no name and none is collected here; a name can only enter a
    # case the resident consented to, in the multi-agency intake's own records.
    case_id = driver.start(staff.tax, "outreach", dict(REFERRAL))
    defn = driver.env.specs.for_case(driver.case(case_id))
    fields = {f for step in defn.steps.values() for f in defn.forms[step.form_key]["properties"]}
    assert not {f for f in fields if "name" in f}


def test_confidentiality_follows_the_lanes_and_the_referral(driver: Driver, staff: Staff,
                                                            personas: Personas) -> None:
    case_id = reached_and_visited(driver, staff, personas)
    driver.complete_step(staff.worker, case_id, "decide", {"next": "connect", "reason": "複合的な課題"})
    with driver.factory() as s:
        (new,) = s.scalars(select(Case).where(Case.process_key == "multi_agency"))
        outsider, tax, elder = (driver.user(s, u) for u in (personas.outsider, staff.tax, personas.elder_care))
        for who in (outsider, elder):
            for cid in (case_id, new.id):
                with pytest.raises(NotFound):
                    cases.get_case(s, driver.env, who, cid, START)
        # The tax section referred the outreach case, so sees it as any referring agency
        # does; the six-step case it did not refer stays hidden from it.
        assert cases.get_case(s, driver.env, tax, case_id, START).id == case_id
        with pytest.raises(NotFound):
            cases.get_case(s, driver.env, tax, new.id, START)


def test_only_the_outreach_section_works_its_tasks(driver: Driver, staff: Staff, personas: Personas) -> None:
    case_id = driver.start(staff.tax, "outreach", dict(REFERRAL))
    task = driver.task(case_id, "assign")
    with pytest.raises(Forbidden):
        driver.complete(staff.tax, task.id, ASSIGN)
    with pytest.raises(NotFound):
        driver.complete(personas.outsider, task.id, ASSIGN)
    assert driver.open_steps(case_id) == ["assign"]


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        pytest.param({**REFERRAL, "source": "gas"}, {"data.source"}, id="unknown-source"),
        pytest.param({k: v for k, v in REFERRAL.items() if k != "household_ref"}, {"data.household_ref"},
                     id="no-household"),
        pytest.param({**REFERRAL, "amount_yen": -1, "months_in_arrears": "7"},
                     {"data.amount_yen", "data.months_in_arrears"}, id="bad-amounts"),
        pytest.param({**REFERRAL, "household_ref": "山田 太郎"}, {"data.household_ref"}, id="name-as-reference"),
        pytest.param({**REFERRAL, "person_name": "山田 太郎"}, {"data.person_name"}, id="name-field"),
    ],
)
def test_bad_referral_is_refused_with_the_field_named_and_opens_nothing(
        driver: Driver, staff: Staff, data: dict[str, Any], fields: set[str]) -> None:
    with pytest.raises(Invalid) as err:
        driver.start(staff.tax, "outreach", data)
    assert set(err.value.fields) == fields
    assert all("/" in message for message in err.value.fields.values())  # Japanese / English
    assert driver.count(Case) == 0


def test_start_event_naming_a_missing_form_refuses_the_deployment(driver: Driver, tmp_path: Path) -> None:
    folder = tmp_path / "processes"
    shutil.copytree(ROOT / "processes", folder)
    bpmn = folder / "outreach.bpmn"
    text = bpmn.read_text(encoding="utf-8")
    assert text.count('value="outreach_referral"') == 1
    bpmn.write_text(text.replace('value="outreach_referral"', 'value="arrears_feed"'), encoding="utf-8")
    with driver.factory() as s, pytest.raises(DeployError) as err:
        specs.deploy(s, specs.read_sources(folder, ROOT / "forms"), driver.env.org, driver.clock.now())
    assert (err.value.element, err.value.file) == ("start", "outreach.bpmn")
    assert "arrears_feed" in str(err.value)
    assert [d.version for d in driver.definitions("outreach")] == [1]
