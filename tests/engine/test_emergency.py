"""Process B (緊急対応) and its hand-over to Process A (多機関協働事業)."""

from __future__ import annotations

from sqlalchemy import select

from engine import cases
from engine.models import Case, CaseLink, OutboxEvent
from engine.status import CaseStatus, EventKind, OutboxKind
from tests.conftest import Personas
from tests.engine.support import JUDGEMENT, Driver, intake, walk_emergency


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
    assert [e.step for e in driver.completions(em_id)] == ["judge_urgency", "respond", "end_emergency",
                                                           "continuing_support"]


def test_hand_over_is_announced_in_the_outbox(driver: Driver, personas: Personas) -> None:
    em_id = walk_emergency(driver, personas, continue_support=True)
    with driver.factory() as s:
        kinds = [o.kind for o in s.scalars(select(OutboxEvent).where(OutboxEvent.case_id == em_id))]
        linked = s.scalar(select(OutboxEvent).where(OutboxEvent.kind == OutboxKind.CASE_LINKED))
    assert kinds.count(OutboxKind.CASE_LINKED) == 1
    assert kinds.count(OutboxKind.CASE_COMPLETED) == 1
    assert linked is not None and linked.payload["linked_case_number"] == "MA-2026-00001"
