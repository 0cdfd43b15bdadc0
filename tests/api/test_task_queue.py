"""GET /api/tasks: the caller's open tasks (their groups' and those assigned to them elsewhere)
by due date, none last, then age; the page chosen from the queue index (engine.casework.queue), each row in
TaskOut's shape."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import insert, select

from engine.casework import cases
from engine.models import Case, HumanTask, ProcessDefinition, User
from engine.security.access import task_queue_clause
from engine.status import TaskState
from web.api.schemas import TaskOut


def _fill(session, now, assignee_id: int) -> None:  # noqa: ANN001
    """Tasks in the secretariat's groups and others, equal due dates and creation times (ties), no
    due date, some done, some assigned to the secretariat member in another group."""
    definition = session.scalar(select(ProcessDefinition.id).where(ProcessDefinition.process_key == "multi_agency"))
    case_ids = [str(uuid.uuid4()) for _ in range(7)]
    session.execute(insert(Case), [
        {"id": cid, "number": f"MA-2025-{i:05d}", "process_key": "multi_agency", "definition_id": definition,
         "status": "active", "referring_group_id": "hokatsu-center", "summary": "", "created_at": now,
         "updated_at": now, "state": "", "serializer_version": "1", "version": 1} for i, cid in enumerate(case_ids)])
    groups = ["secretariat", "chiiki-kyosei", "hokatsu-center", "choju-anshin", None]
    session.execute(insert(HumanTask), [
        {"id": str(uuid.uuid4()), "case_id": case_ids[i % 7], "process_key": "multi_agency",
         "step": ["assessment", "plan"][i % 2], "name": "step", "lane": None, "group_id": groups[i % 5],
         "assignee_id": assignee_id if i % 6 == 0 else None, "form_key": "plan",
         "state": TaskState.COMPLETED if i % 11 == 0 else TaskState.OPEN,
         # Times with and without microseconds: the answer writes each as isoformat() does.
         "created_at": now - timedelta(minutes=i % 4, microseconds=250 * (i % 3)),
         "due_at": None if i % 7 == 3 else now + timedelta(days=(i * 37) % 9 - 3, microseconds=i % 2)}
        for i in range(180)])
    session.commit()


def _expected(session, actor, **where):  # noqa: ANN001, ANN003, ANN202
    rows = list(session.scalars(select(HumanTask).where(task_queue_clause(actor), *[
        getattr(HumanTask, k) == v for k, v in where.items()])))
    rows.sort(key=lambda t: (t.due_at is None, t.due_at or t.created_at, t.created_at, t.id))
    return [t.id for t in rows]


def test_the_queue_holds_exactly_the_callers_tasks_in_order_at_any_offset(api, session, personas, clock) -> None:  # noqa: ANN001
    _fill(session, clock.now(), personas.secretariat.id)
    sec = api("secretariat")
    actor = session.get(User, personas.secretariat.id)
    expected = _expected(session, actor)
    assert len(expected) > 60
    assert [t["id"] for t in sec.get("/api/tasks").json] == expected
    for limit, offset in ((1, 0), (7, 3), (50, 50), (10, len(expected) - 4), (5, len(expected) + 10)):
        page = sec.get(f"/api/tasks?limit={limit}&offset={offset}").json
        assert [t["id"] for t in page] == expected[offset:offset + limit], (limit, offset)
    assert [t["id"] for t in sec.get("/api/tasks?step=plan").json] == _expected(session, actor, step="plan")
    assert [t["id"] for t in sec.get("/api/tasks?group=chiiki-kyosei&limit=3").json] == \
        _expected(session, actor, group_id="chiiki-kyosei")[:3]
    assert [t.id for t in cases.list_tasks(session, actor, limit=9, offset=2)] == expected[2:11]


def test_each_queue_row_is_what_the_task_schema_dumps(api, session, personas, clock) -> None:  # noqa: ANN001
    _fill(session, clock.now(), personas.secretariat.id)
    rows = api("secretariat").get("/api/tasks").json
    for row in rows:
        task = session.get(HumanTask, row["id"])
        assignee = session.get(User, task.assignee_id).name if task.assignee_id else None
        assert row == TaskOut().dump({
            "id": task.id, "case_id": task.case_id, "case_number": task.case.number, "process": task.process_key,
            "step": task.step, "name": task.name, "group": task.group_id, "assignee": assignee,
            "form": task.form_key, "state": task.state, "created_at": task.created_at, "due_at": task.due_at,
            "completed_at": None, "completed_by": None})
    assert any(r["assignee"] == "kyosei.tanaka" for r in rows) and any(r["due_at"] is None for r in rows)


def test_someone_without_tasks_gets_an_empty_queue(api) -> None:  # noqa: ANN001
    assert api("outsider").get("/api/tasks").json == []
