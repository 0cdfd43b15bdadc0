"""A page of a case's history: the newest events, oldest first, each with who wrote it, read in one
statement however many people wrote them (no user objects loaded for it)."""

from __future__ import annotations

from engine.casework import cases
from engine.models import Case
from tests.conftest import Personas
from tests.engine.support import Driver, statements_sent, waiting_case


def test_a_history_page_names_each_writer_and_is_one_statement(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = waiting_case(driver, personas)
    with driver.factory() as s:
        case = s.get(Case, case_id)
        s.expunge_all()
        page: list[cases.HistoryEvent] = []
        sent = statements_sent(driver, lambda: page.extend(cases.history_page(s, case, limit=4)[0]))
        everything, older = cases.history_page(s, case, limit=500)
    assert len(sent) == 1, [text for text, _, _ in sent]
    assert [e.id for e in page] == [e.id for e in everything[-4:]]
    assert older is None and everything[0].kind == "case_started"
    writers = {e.kind: e.actor for e in everything if e.actor is not None}
    assert writers["case_started"].name == p.caseworker.name
    assert writers["case_started"].display_name == p.caseworker.display_name
    assert {e.actor.name for e in everything if e.kind == "task_completed"} == {p.caseworker.name, p.secretariat.name}
    # The system's own events name nobody.
    assert all(e.actor is None for e in everything if e.kind in ("task_created", "timer_scheduled"))
