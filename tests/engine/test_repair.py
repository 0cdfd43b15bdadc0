"""A supervisor's repairs: retry a case in error (after the data is corrected, after a fixed
version), move the token with a reason, reassign tasks in bulk; who may; what is recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update

from engine.casework import repair
from engine.errors import Conflict, Forbidden, Invalid, NotFound, WorkflowFailed
from engine.models import AuditRecord, Case, ProcessDefinition, User
from engine.security import audit, users
from engine.settings import ROOT
from engine.status import CaseStatus, EventKind, TaskState
from engine.workflow import specs
from tests.conftest import Personas
from tests.engine.support import ASSESSMENT, Driver, diagram, intake, plan


def _trail(driver: Driver, case_id: str, action: str) -> list[AuditRecord]:
    with driver.factory() as s:
        return list(s.scalars(select(AuditRecord).where(AuditRecord.case_id == case_id, AuditRecord.action == action)))


def _deploy(driver: Driver, tmp_path: Path, script: str) -> int:
    where = tmp_path / f"v{len(list(tmp_path.iterdir()))}"
    where.mkdir()
    folder = diagram(where, script=script)
    with driver.factory() as s:
        specs.deploy(s, specs.read_sources(folder, ROOT / "forms"), driver.env.org, driver.clock.now())
        return s.scalar(select(ProcessDefinition.id).where(ProcessDefinition.process_key == "probe")
                        .order_by(ProcessDefinition.version.desc()).limit(1))


def _failed_case(driver: Driver, p: Personas, tmp_path: Path, script: str, data: dict | None = None) -> str:
    _deploy(driver, tmp_path, script)
    case_id = driver.start(p.secretariat, "probe", data=data, group="chiiki-kyosei")
    with pytest.raises(WorkflowFailed):
        driver.complete(p.secretariat, driver.task(case_id, "work").id, {"advice": "電話で助言"})
    assert driver.case(case_id).status == CaseStatus.ERROR
    return case_id


def _retry(driver: Driver, who, case_id: str, data: dict | None = None):  # noqa: ANN001, ANN202
    with driver.factory() as s:
        return repair.retry_case(s, driver.env, driver.user(s, who), case_id, data, driver.clock.now())


def test_retry_after_the_data_is_corrected_runs_the_failed_step_with_what_was_submitted(
        driver: Driver, personas: Personas, tmp_path: Path) -> None:
    p = personas
    case_id = _failed_case(driver, p, tmp_path, "total = 2 / divisor", {"divisor": 0})
    task = driver.task(case_id, "work")
    assert task.draft == {"advice": "電話で助言"}  # the failed submission is kept
    # without the correction the step fails again: 422 naming the element, still in error
    with pytest.raises(WorkflowFailed) as err:
        _retry(driver, p.supervisor, case_id)
    assert err.value.fields == {"element": "middle"}
    assert driver.case(case_id).status == CaseStatus.ERROR
    assert len(driver.history(case_id, EventKind.CASE_ERROR)) == 2
    (attempt,) = _trail(driver, case_id, audit.Action.CASE_RETRY)
    assert attempt.actor_id == p.supervisor.id and attempt.detail["failed"] == "middle"

    _retry(driver, p.supervisor, case_id, {"divisor": 1})
    after = driver.case(case_id)
    assert after.status == CaseStatus.COMPLETED and after.error is None
    (done,) = driver.completions(case_id)
    assert done.actor_id == p.secretariat.id and done.data == {"advice": "電話で助言"}
    assert driver.task_row(task.id).completed_by_id == p.secretariat.id
    (retried,) = driver.history(case_id, EventKind.CASE_RETRIED)
    assert retried.actor_id == p.supervisor.id and retried.data["corrected"] == ["divisor"]
    record = _trail(driver, case_id, audit.Action.CASE_RETRY)[-1]
    assert record.actor_id == p.supervisor.id and "failed" not in record.detail


def test_retry_after_a_fixed_version(driver: Driver, personas: Personas, tmp_path: Path) -> None:
    p = personas
    case_id = _failed_case(driver, p, tmp_path, "total = 1 / 0")
    fixed = _deploy(driver, tmp_path, "total = 1 + 1")
    # Moving the case onto the fixed version is the migration's work (another part of the
    # system); here it is done by hand.
    with driver.factory() as s:
        s.execute(update(Case).where(Case.id == case_id).values(definition_id=fixed))
        s.commit()
    _retry(driver, p.supervisor, case_id)
    assert driver.case(case_id).status == CaseStatus.COMPLETED
    assert driver.task_row(driver.history(case_id, EventKind.TASK_CREATED)[0].task_id).state == TaskState.COMPLETED


def test_retry_is_for_supervisors_on_cases_in_error_they_may_see(driver: Driver, personas: Personas,
                                                                tmp_path: Path) -> None:
    p = personas
    case_id = _failed_case(driver, p, tmp_path, "total = 1 / 0")
    with pytest.raises(Forbidden):
        _retry(driver, p.secretariat, case_id)
    # the administrator's role allows repairs, but not seeing this case: like no case at all
    with pytest.raises(NotFound):
        _retry(driver, p.admin, case_id)
    assert _trail(driver, case_id, audit.Action.ACCESS_DENIED)[-1].detail == {"via": audit.Action.CASE_RETRY}
    ok = driver.start(p.caseworker)
    with pytest.raises(Conflict):
        _retry(driver, p.supervisor, ok)
    with pytest.raises(Invalid) as err:
        _retry(driver, p.supervisor, case_id, ["not", "an", "object"])  # type: ignore[arg-type]
    assert set(err.value.fields) == {"data"}
    assert driver.case(case_id).status == CaseStatus.ERROR


def _move(driver: Driver, who, case_id: str, to_step, reason):  # noqa: ANN001, ANN202
    with driver.factory() as s:
        return repair.move_case(s, driver.env, driver.user(s, who), case_id, to_step, reason, driver.clock.now())


def test_move_back_and_forward_with_a_reason(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    old = driver.task(case_id, "assessment")
    _move(driver, p.supervisor, case_id, "intake", "つなぎ元の情報が不足していたため差し戻し")
    assert driver.open_steps(case_id) == ["intake"]
    assert driver.task_row(old.id).state == TaskState.CANCELLED
    (moved,) = driver.history(case_id, EventKind.CASE_MOVED)
    assert moved.actor_id == p.supervisor.id
    assert moved.data["from"] == "assessment" and moved.data["to"] == "intake" and moved.data["reason"]
    (record,) = _trail(driver, case_id, audit.Action.CASE_MOVE)
    assert record.detail["reason"] == "つなぎ元の情報が不足していたため差し戻し"
    driver.check(case_id)
    # the flow goes on from there as usual
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    assert driver.open_steps(case_id) == ["assessment"]
    # forward: skip the assessment already done on paper
    _move(driver, p.supervisor, case_id, "plan", "アセスメントは紙で実施済み")
    assert driver.open_steps(case_id) == ["plan"]
    driver.check(case_id)
    driver.complete_step(p.secretariat, case_id, "plan", plan())
    assert driver.open_steps(case_id) == ["meeting"]


def test_move_refusals_name_the_field_and_change_nothing(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    before = driver.case(case_id)
    for to_step, reason, field in [("intake", "同じ工程", "to_step"), ("nowhere", "不明", "to_step"),
                                   ("start", "開始イベント", "to_step"), ("plan", "  ", "reason"),
                                   ("plan", None, "reason"), (None, "理由", "to_step")]:
        with pytest.raises(Invalid) as err:
            _move(driver, p.supervisor, case_id, to_step, reason)
        assert set(err.value.fields) == {field}, (to_step, reason)
    with pytest.raises(Forbidden):
        _move(driver, p.caseworker, case_id, "plan", "理由")
    assert driver.case(case_id).state == before.state
    assert driver.history(case_id, EventKind.CASE_MOVED) == []


def _other_supervisor(driver: Driver) -> User:
    """A supervisor of 長寿安心課: sees the cases of that division only."""
    with driver.factory() as s:
        user = users.add_user(s, "choju.kacho", ["choju-anshin"], ["supervisor"], driver.clock.now(), "長寿 課長")
        s.commit()
        return user


def test_bulk_reassign_gives_a_result_per_task(driver: Driver, personas: Personas) -> None:
    p = personas
    tasks = []
    for _ in range(2):
        case_id = driver.start(p.caseworker)
        driver.complete_step(p.caseworker, case_id, "intake", intake())
        tasks.append(driver.task(case_id, "assessment"))
    done_case = driver.start(p.caseworker)
    done = driver.complete_step(p.caseworker, done_case, "intake", intake())
    ids = [tasks[0].id, "no-such-task", tasks[1].id, done.id, tasks[0].id]
    with driver.factory() as s:
        results = repair.assign_tasks(s, driver.env, driver.user(s, p.supervisor), ids, "kyosei.tanaka",
                                      driver.clock.now())
    assert [(r["task_id"], r["ok"], r.get("error", {}).get("code")) for r in results] == [
        (tasks[0].id, True, None), ("no-such-task", False, "not_found"), (tasks[1].id, True, None),
        (done.id, False, "conflict")]
    for task in tasks:
        assert driver.task_row(task.id).assignee_id == p.secretariat.id
        (assigned,) = driver.history(task.case_id, EventKind.TASK_ASSIGNED)
        assert assigned.data["bulk"] is True and assigned.actor_id == p.supervisor.id
        assert len(_trail(driver, task.case_id, audit.Action.TASK_ASSIGN)) == 1
    with driver.factory() as s:
        (refused,) = repair.assign_tasks(s, driver.env, driver.user(s, p.supervisor), [tasks[0].id],
                                         "hokatsu.sato", driver.clock.now())
        assert refused["ok"] is False and refused["error"]["code"] == "invalid"
        with pytest.raises(Forbidden):
            repair.assign_tasks(s, driver.env, driver.user(s, p.secretariat), [tasks[0].id], "kyosei.tanaka",
                                driver.clock.now())
        with pytest.raises(Invalid) as err:
            repair.assign_tasks(s, driver.env, driver.user(s, p.supervisor), [], "kyosei.tanaka",
                                driver.clock.now())
        assert set(err.value.fields) == {"tasks"}


def test_bulk_reassign_of_a_task_the_supervisor_may_not_see_is_not_found(driver: Driver,
                                                                         personas: Personas) -> None:
    p = personas
    other = _other_supervisor(driver)
    case_id = driver.start(p.caseworker)
    task = driver.task(case_id, "intake")
    with driver.factory() as s:
        (result,) = repair.assign_tasks(s, driver.env, driver.user(s, other), [task.id], "hokatsu.sato",
                                        driver.clock.now())
    assert result == {"task_id": task.id, "ok": False,
                      "error": {"code": "not_found", "message": "作業が見つかりません / task not found"}}
    assert driver.task_row(task.id).assignee_id is None
    (denied,) = _trail(driver, case_id, audit.Action.ACCESS_DENIED)
    assert denied.actor_id == other.id and denied.detail["via"] == audit.Action.TASK_ASSIGN


def test_assessment_completes_after_a_bulk_assignment(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    task = driver.task(case_id, "assessment")
    with driver.factory() as s:
        repair.assign_tasks(s, driver.env, driver.user(s, p.supervisor), [task.id], "kyosei.tanaka",
                            driver.clock.now())
    driver.complete(p.secretariat, task.id, ASSESSMENT)
    assert driver.open_steps(case_id) == ["plan"]
