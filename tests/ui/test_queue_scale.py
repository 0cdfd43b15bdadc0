"""The work queue with 100,000 open tasks: every query of the queue page reads human_tasks
through an index, never by scanning the table (SQLite's plan; on PostgreSQL, whose planner may
prefer a sequential scan when most rows match, that an index serves the query). How fast it
is, is measured by bench/bench_queue.py, not asserted here."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import insert, select, text

from engine.casework.queue import count_statement, queue_statement, search_queue
from engine.models import Case, HumanTask, ProcessDefinition
from engine.status import TaskState

OPEN_TASKS = 100_000
CASES = 1_000
CHUNK = 10_000

QUERIES = [
    {},
    {"sort": "age"},
    {"sort": "case"},
    {"page": 1_000},
    {"overdue": True},
    {"assignee": "me"},
    {"assignee": "unassigned"},
    {"step": "plan", "process": "multi_agency"},
    {"group": "chiiki-kyosei"},
    {"q": "世帯 0042"},
]


def fill(session_factory, now, assignee_id: int, count: int = OPEN_TASKS) -> None:  # noqa: ANN001
    """`count` open tasks: most in the secretariat's groups, every 97th assigned to `assignee_id`,
    some overdue, some without a due date; the rows are written directly (core inserts in
    chunks), with only as much of a case as a task needs. Also used by bench/bench_queue.py."""
    with session_factory() as s:
        definition = s.scalar(select(ProcessDefinition.id).where(ProcessDefinition.process_key == "multi_agency"))
        case_ids = [str(uuid.uuid4()) for _ in range(CASES)]
        s.execute(insert(Case), [
            {"id": cid, "number": f"MA-2025-{i:05d}", "process_key": "multi_agency", "definition_id": definition,
             "status": "active", "referring_group_id": "hokatsu-center", "summary": f"世帯 {i:04d} の相談",
             "created_at": now, "updated_at": now, "state": "", "serializer_version": "1", "version": 1}
            for i, cid in enumerate(case_ids)])
        groups = ["secretariat", "secretariat", "chiiki-kyosei", "hokatsu-center", "choju-anshin"]
        steps = ["assessment", "plan", "meeting", "monitoring", "closure"]
        for start in range(0, count, CHUNK):
            s.execute(insert(HumanTask), [
                {"id": str(uuid.uuid4()), "case_id": case_ids[i % CASES], "process_key": "multi_agency",
                 "step": steps[i % 5], "name": steps[i % 5], "lane": "事務局", "group_id": groups[(i // 5) % 5],
                 "assignee_id": assignee_id if i % 97 == 0 else None, "form_key": None,
                 "state": TaskState.OPEN, "created_at": now - timedelta(minutes=i),
                 "due_at": None if i % 50 == 0 else now + timedelta(minutes=(i * 7919) % 200_000 - 10_000)}
                for i in range(start, min(start + CHUNK, count))])
        s.commit()
        if s.bind.dialect.name == "postgresql":  # what autovacuum does for a table that has been around
            with s.bind.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE human_tasks"))
                conn.execute(text("VACUUM ANALYZE cases"))


def plan(session, stmt) -> str:  # noqa: ANN001
    sql = str(stmt.compile(session.bind, compile_kwargs={"literal_binds": True}))
    if session.bind.dialect.name == "sqlite":
        return "\n".join(row[-1] for row in session.execute(text("EXPLAIN QUERY PLAN " + sql)))
    session.execute(text("SET LOCAL enable_seqscan = off"))
    try:
        return "\n".join(row[0] for row in session.execute(text("EXPLAIN " + sql)))
    finally:
        session.rollback()


def test_queue_at_100k_open_tasks_uses_indexes_and_is_right(session_factory, personas, clock) -> None:  # noqa: ANN001
    fill(session_factory, clock.now(), personas.secretariat.id)
    now = clock.now()
    with session_factory() as s:
        secretariat = s.get(type(personas.secretariat), personas.secretariat.id)
        for kw in QUERIES:
            page = plan(s, queue_statement(secretariat, now=now, **kw))
            count = plan(s, count_statement(secretariat, now=now,
                                            **{k: v for k, v in kw.items() if k not in ("sort", "page")}))
            for what in (page, count):
                if s.bind.dialect.name == "sqlite":
                    lines = what.splitlines()
                    assert any("human_tasks USING" in line and "INDEX" in line for line in lines), (kw, what)
                    assert not any(line.startswith("SCAN human_tasks") for line in lines), (kw, what)
                else:
                    # PostgreSQL weighs its statistics: with most of the table matching, a (parallel)
                    # sequential scan may rightly win. What must hold is that the index fits the query.
                    assert "Index" in what, (kw, what)
            if s.bind.dialect.name == "sqlite" and "q" not in kw and kw.get("sort") != "case":
                # the caller's groups' tasks come from an index alone, without reading the table
                # (filtered by assignee, from the assignee's index, whose prefix the filter fixes)
                assert ("USING COVERING INDEX ix_human_tasks_queue (state=? AND group_id=?" in page
                        or "assignee" in kw and "USING COVERING INDEX ix_human_tasks_assignee_queue "
                        "(assignee_id=? AND state=? AND group_id=?" in page), (kw, page)
                # tasks of other groups assigned to the caller: from the assignee's covering index
                assert "USING COVERING INDEX ix_human_tasks_assignee_queue (assignee_id=?" in page, (kw, page)

        rows, total = search_queue(s, secretariat, now=now)
        # secretariat + chiiki-kyosei hold 3 of the 5 groups' tasks, plus those assigned to tanaka elsewhere
        groups = ["secretariat", "secretariat", "chiiki-kyosei", "hokatsu-center", "choju-anshin"]
        assigned = range(0, OPEN_TASKS, 97)
        elsewhere = sum(1 for i in assigned if groups[(i // 5) % 5] not in ("secretariat", "chiiki-kyosei"))
        assert total == OPEN_TASKS * 3 // 5 + elsewhere
        assert len(rows) == 50
        dues = [r.due_at for r in rows]
        assert all(d is not None for d in dues) and dues == sorted(dues)
        last, _ = search_queue(s, secretariat, page=(total + 49) // 50, now=now)
        assert last and all(r.due_at is None for r in last)  # tasks without a due date come last
        overdue, n_overdue = search_queue(s, secretariat, overdue=True, now=now)
        assert n_overdue > 0 and all(r.overdue(now) for r in overdue)
        mine, n_mine = search_queue(s, secretariat, assignee="me", now=now)
        assert n_mine == len(assigned) and all(r.assignee_name == "kyosei.tanaka" for r in mine)
        found, n_found = search_queue(s, secretariat, q="MA-2025-00042", now=now)
        assert n_found > 0 and {r.case_number for r in found} == {"MA-2025-00042"}
