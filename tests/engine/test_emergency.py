"""Process B (緊急対応) and its hand-over to Process A (多機関協働事業)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.casework import cases
from engine.errors import Forbidden, Invalid, NotFound
from engine.models import Case, CaseLink, OutboxEvent
from engine.status import CaseStatus, EventKind, OutboxKind
from tests.conftest import Personas
from tests.engine.support import JUDGEMENT, REQUEST_ACK, Driver, intake, walk_emergency


def test_emergency_with_continuing_support_hands_over_to_a_linked_multi_agency_case(
        driver: Driver, personas: Personas) -> None:
    p = personas
    em_id = walk_emergency(driver, personas, continue_support=True)
    em = driver.case(em_id)
    assert em.status == CaseStatus.COMPLETED
    assert em.completed_at == driver.clock.now()

    with driver.factory() as s:
        new_cases = list(s.scalars(select(Case).where(Case.process_key == "multi_agency")))
        assert len(new_cases) == 1
        new = new_cases[0]
        links = list(s.scalars(select(CaseLink)))
        assert [(lk.from_case_id, lk.to_case_id, lk.kind) for lk in links] == [(em_id, new.id, "handover")]
        # Linked both ways, as the caseworker sees it.
        actor = driver.user(s, p.caseworker)
        em_row = s.get(Case, em_id)
        assert em_row is not None
        assert [(rel, c.id) for rel, c in cases.linked_cases(s, driver.env, actor, em_row)] == \
            [("handed_over_to", new.id)]
        assert [(rel, c.id) for rel, c in cases.linked_cases(s, driver.env, actor, new)] == \
            [("handed_over_from", em_id)]
        # The outsider sees neither side of the link.
        outsider = driver.user(s, p.outsider)
        assert cases.linked_cases(s, driver.env, outsider, new) == []

    assert new.status == CaseStatus.ACTIVE
    assert new.number == "MA-2026-00001"
    assert new.referring_group_id == "hokatsu-center"
    assert new.created_at == driver.clock.now()
    assert driver.open_steps(new.id) == ["intake"]
    assert driver.task(new.id, "intake").group_id == "hokatsu-center"
    driver.check(new.id)

    (started,) = driver.history(new.id, EventKind.CASE_STARTED)
    assert started.data is not None
    assert started.data["origin_case"] == {"id": em_id, "number": em.number, "process": "emergency"}
    assert started.data["emergency"]["urgency"] == "high"
    assert started.data["emergency"]["situation"] == JUDGEMENT["situation"]
    assert "世帯に複数の課題がある" in started.data["summary"]
    assert driver.ready_data(new.id, "intake")["origin_case"]["number"] == em.number
    (linked_from,) = driver.history(new.id, EventKind.CASE_LINKED)
    assert linked_from.data == {"from": em.number, "from_id": em_id}
    (linked_to,) = driver.history(em_id, EventKind.CASE_LINKED)
    assert linked_to.data == {"to": new.number, "to_id": new.id}

    # The handed-over case continues as any multi-agency case.
    driver.complete_step(p.caseworker, new.id, "intake", intake())
    assert driver.open_steps(new.id) == ["assessment"]
    driver.check(new.id)


def test_emergency_without_continuing_support_just_ends(driver: Driver, personas: Personas) -> None:
    em_id = walk_emergency(driver, personas, continue_support=False)
    assert driver.case(em_id).status == CaseStatus.COMPLETED
    with driver.factory() as s:
        assert list(s.scalars(select(Case).where(Case.process_key == "multi_agency"))) == []
        assert list(s.scalars(select(CaseLink))) == []
    assert driver.history(em_id, EventKind.CASE_LINKED) == []
    assert [e.step for e in driver.completions(em_id)] == ["judge_urgency", "respond", "end_emergency", "confirm_request",
                                                           "continuing_support"]


def test_hand_over_is_announced_in_the_outbox(driver: Driver, personas: Personas) -> None:
    em_id = walk_emergency(driver, personas, continue_support=True)
    with driver.factory() as s:
        kinds = [o.kind for o in s.scalars(select(OutboxEvent).where(OutboxEvent.case_id == em_id))]
        linked = s.scalar(select(OutboxEvent).where(OutboxEvent.kind == OutboxKind.CASE_LINKED))
    assert kinds.count(OutboxKind.CASE_LINKED) == 1
    assert kinds.count(OutboxKind.CASE_COMPLETED) == 1
    assert linked is not None and linked.payload["linked_case_number"] == "MA-2026-00001"


def _at_respond(driver: Driver, p: Personas) -> str:
    case_id = driver.start(p.caseworker, "emergency")
    driver.complete_step(p.caseworker, case_id, "judge_urgency", JUDGEMENT)
    return case_id


@pytest.mark.parametrize("groups", [None, []])
def test_a_request_for_help_names_at_least_one_agency(driver: Driver, personas: Personas,
                                                       groups: list[str] | None) -> None:
    p = personas
    case_id = _at_respond(driver, p)
    before = driver.case(case_id)
    data = {"action": "request", "response": "救急搬送を要請"}
    if groups is not None:
        data["requested_groups"] = groups
    with pytest.raises(Invalid) as err:
        driver.complete_step(p.caseworker, case_id, "respond", data)
    assert err.value.status == 422
    assert set(err.value.fields) == {"requested_groups"}
    assert "requested_groups" in err.value.message
    after = driver.case(case_id)
    assert (after.version, after.state) == (before.version, before.state)
    assert driver.open_steps(case_id) == ["respond"]


def test_each_requested_agency_gets_a_confirmation_task_in_its_queue(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = _at_respond(driver, p)
    driver.complete_step(p.caseworker, case_id, "respond",
                         {"action": "request", "requested_groups": ["choju-anshin", "hoken-yobo"], "response": "救急要請"})
    confirms = [t for t in driver.open_tasks(case_id) if t.step == "confirm_request"]
    assert sorted(t.group_id for t in confirms) == ["choju-anshin", "hoken-yobo"]
    assert {t.name for t in confirms} == {"緊急連携の確認"}
    assert all(t.due_at == driver.clock.now() + timedelta(hours=4) for t in confirms)
    with driver.factory() as s:
        queue = cases.list_tasks(s, driver.user(s, p.elder_care))
        assert [t.step for t in queue] == ["confirm_request"]
        created = [e.payload for e in s.scalars(select(OutboxEvent).where(OutboxEvent.kind == OutboxKind.TASK_CREATED))
                   if e.payload.get("step") == "confirm_request"]
        assert sorted(e["group"] for e in created) == ["choju-anshin", "hoken-yobo"]
    # Another agency's staff may not complete it; its own may.
    mine = next(t for t in confirms if t.group_id == "choju-anshin")
    theirs = next(t for t in confirms if t.group_id == "hoken-yobo")
    with pytest.raises((Forbidden, NotFound)):
        driver.complete(p.elder_care, theirs.id, REQUEST_ACK)
    driver.complete(p.elder_care, mine.id, REQUEST_ACK)
    assert sorted(driver.open_steps(case_id)) == ["confirm_request", "end_emergency"]
    (done,) = [e for e in driver.completions(case_id) if e.step == "confirm_request"]
    assert done.actor_id == p.elder_care.id and done.data == REQUEST_ACK
    driver.check(case_id)


def test_an_emergency_handled_by_the_finder_asks_no_agency(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = _at_respond(driver, p)
    driver.complete_step(p.caseworker, case_id, "respond", {"action": "self", "response": "訪問して安全を確認"})
    assert driver.open_steps(case_id) == ["end_emergency"]
    driver.check(case_id)
