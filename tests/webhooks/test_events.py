"""The outgoing event types written with each change: the issue's names, minimal payloads."""

from __future__ import annotations

from sqlalchemy import select

from engine.casework import cases
from engine.models import OutboxEvent
from tests.engine.support import ASSESSMENT, intake


def test_claim_and_assignment_are_task_claimed_without_names(session, env, personas, clock) -> None:  # noqa: ANN001
    p = personas
    case = cases.start_case(session, env, p.caseworker, "multi_agency", {"summary": "相談"}, None, clock.now())
    (task,) = cases.case_open_tasks(session, case)
    cases.complete_task(session, env, p.caseworker, task.id, intake(), clock.now())
    (task,) = cases.case_open_tasks(session, case)
    cases.claim_task(session, env, p.secretariat, task.id, clock.now())
    cases.release_task(session, env, p.secretariat, task.id, clock.now())
    cases.assign_task(session, env, p.supervisor, task.id, p.secretariat.name, clock.now())
    cases.complete_task(session, env, p.secretariat, task.id, ASSESSMENT, clock.now())
    events = list(session.scalars(select(OutboxEvent).where(OutboxEvent.case_id == case.id).order_by(OutboxEvent.id)))
    assert [e.kind for e in events] == ["case.created", "task.created", "task.completed", "task.created",
                                        "task.claimed", "task.claimed", "task.completed", "task.created"]
    assert [e.payload.get("by") for e in events if e.kind == "task.claimed"] == ["claim", "assignment"]
    text = str([e.payload for e in events])
    for person in (p.caseworker, p.secretariat, p.supervisor):
        assert person.name not in text and person.display_name not in text
    assert intake()["summary"] not in text
    assert all({"case_id", "case_number", "process"} <= set(e.payload) for e in events)
