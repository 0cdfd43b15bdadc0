"""The supervisor's pages: the queue's 要対応 section and bulk reassignment, and the case page's
retry and move forms; staff see none of it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from engine.casework import cases, escalation
from engine.errors import WorkflowFailed
from engine.models import Escalation, HumanTask, User
from engine.settings import ROOT
from engine.status import CaseStatus, EventKind, TaskState
from engine.workflow import specs
from tests.engine.support import diagram, intake


def _at_assessment(session, env, personas, clock) -> HumanTask:  # noqa: ANN001
    user = session.get(User, personas.caseworker.id)
    case = cases.start_case(session, env, user, "multi_agency", {"summary": "高齢の母と無職の息子"}, None, clock.now())
    task = session.scalar(select(HumanTask).where(HumanTask.case_id == case.id, HumanTask.state == TaskState.OPEN))
    cases.complete_task(session, env, session.get(User, personas.caseworker.id), task.id, intake(), clock.now())
    return session.scalar(select(HumanTask).where(HumanTask.case_id == case.id, HumanTask.state == TaskState.OPEN))


def test_queue_shows_escalations_to_the_supervisor_who_acknowledges_them(staff, session, session_factory, env,  # noqa: ANN001
                                                                         personas, clock) -> None:
    task = _at_assessment(session, env, personas, clock)
    clock.advance(days=15)
    escalation.escalate_due(session_factory, env, clock.now())
    page = staff("supervisor")
    body = page.get("/").get_data(as_text=True)
    assert 'id="escalations"' in body and f'data-task-id="{task.id}"' in body
    assert "要対応" in body and 'form="bulk-assign"' in body
    with session_factory() as s:
        item_id = s.scalar(select(Escalation.id).where(Escalation.task_id == task.id))
    r = page.post(f"/escalations/{item_id}/acknowledge", {"note": "電話で状況確認", "next": "/"})
    assert r.status_code == 302
    assert "確認済みにしました" in page.get("/").get_data(as_text=True)
    assert 'data-escalation-id' not in page.get("/").get_data(as_text=True)
    with session_factory() as s:
        row = s.scalar(select(Escalation).where(Escalation.id == item_id))
        assert row.acknowledged_by_id == personas.supervisor.id and row.note == "電話で状況確認"
    # a caseworker sees no such section, and cannot acknowledge
    worker = staff("secretariat")
    assert 'id="escalations"' not in worker.get("/").get_data(as_text=True)
    assert worker.post(f"/escalations/{item_id}/acknowledge", {}).status_code == 403


def test_bulk_reassign_from_the_queue(staff, session, env, personas, clock) -> None:  # noqa: ANN001
    tasks = [_at_assessment(session, env, personas, clock) for _ in range(2)]
    page = staff("supervisor")
    page.get("/")
    r = page.post("/queue/assign", [("task", tasks[0].id), ("task", tasks[1].id), ("task", "nope"),
                                    ("assignee", "kyosei.tanaka"), ("next", "/")])
    assert r.status_code == 302
    body = page.get("/").get_data(as_text=True)
    assert "2件の作業を kyosei.tanaka さんに割り当てました" in body and "1件は割り当てられませんでした" in body
    session.commit()  # end the old snapshot: read what the pages committed
    session.expire_all()
    assert all(session.get(HumanTask, t.id).assignee_id == personas.secretariat.id for t in tasks)
    r = page.post("/queue/assign", [("assignee", "kyosei.tanaka"), ("next", "/")])
    assert r.status_code == 302 and "割り当てる作業を選んでください" in page.get("/").get_data(as_text=True)
    assert staff("secretariat").post("/queue/assign", [("task", tasks[0].id), ("assignee", "kyosei.kimura")]
                                     ).status_code == 403


def test_case_page_retry_and_move_for_supervisors(staff, session, env, personas, clock, tmp_path: Path) -> None:  # noqa: ANN001
    folder = diagram(tmp_path, script="total = 2 / divisor")
    specs.deploy(session, specs.read_sources(folder, ROOT / "forms"), env.org, clock.now())
    user = session.get(User, personas.secretariat.id)
    case = cases.start_case(session, env, user, "probe", {"divisor": 0}, "chiiki-kyosei", clock.now())
    task = session.scalar(select(HumanTask).where(HumanTask.case_id == case.id))
    with pytest.raises(WorkflowFailed):
        cases.complete_task(session, env, session.get(User, personas.secretariat.id), task.id, {"advice": "x"},
                            clock.now())
    page = staff("supervisor")
    body = page.get(f"/cases/{case.id}").get_data(as_text=True)
    assert 'id="repair"' in body and "失敗した工程を再実行" in body and "division by zero" in body
    r = page.post(f"/cases/{case.id}/retry", {})
    assert r.status_code == 302
    assert "まだ失敗します" in page.get(f"/cases/{case.id}").get_data(as_text=True)
    assert 'id="repair"' not in staff("secretariat").get(f"/cases/{case.id}").get_data(as_text=True)
    assert staff("secretariat").post(f"/cases/{case.id}/retry", {}).status_code == 403

    other = _at_assessment(session, env, personas, clock)
    r = page.post(f"/cases/{other.case_id}/move", {"to_step": "intake", "reason": ""})
    assert "理由を入力してください" in page.get(f"/cases/{other.case_id}").get_data(as_text=True)
    r = page.post(f"/cases/{other.case_id}/move", {"to_step": "intake", "reason": "情報不足のため差し戻し"})
    assert r.status_code == 302
    body = page.get(f"/cases/{other.case_id}").get_data(as_text=True)
    assert "案件を移動しました" in body and "情報不足のため差し戻し" in body
    session.commit()  # end the old snapshot: read what the pages committed
    session.expire_all()
    assert [h.kind for h in cases.case_history(session, session.get(HumanTask, other.id).case)
            ].count(EventKind.CASE_MOVED) == 1
    assert session.get(HumanTask, other.id).case.status == CaseStatus.ACTIVE
