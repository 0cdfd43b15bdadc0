"""Drafts, assignment by a supervisor, and a diagram that fails at run time."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from engine.casework import cases
from engine.errors import Conflict, Forbidden, Invalid, WorkflowFailed
from engine.models import OutboxEvent
from engine.settings import ROOT
from engine.status import CaseStatus, EventKind, OutboxKind
from engine.workflow import specs
from tests.conftest import Personas
from tests.engine.support import ASSESSMENT, Driver, diagram, intake


def test_draft_is_kept_unvalidated_and_cleared_on_completion(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    task = driver.task(case_id, "intake")
    version = driver.case(case_id).version
    partial = {"summary": "途中まで", "multiple_targets": "not yet a boolean"}
    with driver.factory() as s:
        cases.save_draft(s, driver.env, driver.user(s, p.caseworker), task.id, partial, driver.clock.now())
    assert driver.task_row(task.id).draft == partial
    assert driver.case(case_id).version == version  # a draft does not touch the workflow
    with pytest.raises(Invalid), driver.factory() as s:
        cases.save_draft(s, driver.env, driver.user(s, p.caseworker), task.id, ["not", "an", "object"],
                         driver.clock.now())
    with pytest.raises(Forbidden), driver.factory() as s:
        cases.save_draft(s, driver.env, driver.user(s, p.secretariat), task.id, {}, driver.clock.now())
    driver.complete(p.caseworker, task.id, intake())
    assert driver.task_row(task.id).draft is None
    with pytest.raises(Conflict), driver.factory() as s:
        cases.save_draft(s, driver.env, driver.user(s, p.caseworker), task.id, partial, driver.clock.now())


def test_supervisor_assigns_a_task_to_a_member_of_its_group(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    task = driver.task(case_id, "assessment")
    now = driver.clock.now()
    with pytest.raises(Forbidden), driver.factory() as s:
        cases.assign_task(s, driver.env, driver.user(s, p.secretariat), task.id, "kyosei.tanaka", now)
    with pytest.raises(Invalid) as err, driver.factory() as s:
        cases.assign_task(s, driver.env, driver.user(s, p.supervisor), task.id, "hokatsu.sato", now)
    assert set(err.value.fields or {}) == {"assignee"}
    with pytest.raises(Invalid), driver.factory() as s:
        cases.assign_task(s, driver.env, driver.user(s, p.supervisor), task.id, "nobody", now)
    with driver.factory() as s:
        cases.assign_task(s, driver.env, driver.user(s, p.supervisor), task.id, "kyosei.tanaka", now)
    assert driver.task_row(task.id).assignee_id == p.secretariat.id
    (assigned,) = driver.history(case_id, EventKind.TASK_ASSIGNED)
    assert assigned.actor_id == p.supervisor.id and assigned.data == {"assignee": "kyosei.tanaka"}
    # Now only the assignee may complete it.
    with pytest.raises(Conflict):
        driver.complete(p.supervisor, task.id, ASSESSMENT)
    driver.complete(p.secretariat, task.id, ASSESSMENT)
    assert driver.open_steps(case_id) == ["plan"]


@pytest.mark.parametrize(("script", "detail"), [
    ("total = 1 / 0", "division by zero"),
    # Passes the deploy-time check (no name starts with _) but reaches __class__ through
    # str.format: RestrictedPython's guard refuses it while the case runs.
    ("total = '{0.__class__}'.format(1)", "format"),
])
def test_diagram_failing_at_run_time_marks_the_case_and_keeps_the_task(
        driver: Driver, personas: Personas, tmp_path: Path, script: str, detail: str) -> None:
    p = personas
    folder = diagram(tmp_path, script=script)
    with driver.factory() as s:
        specs.deploy(s, specs.read_sources(folder, ROOT / "forms"), driver.env.org, driver.clock.now())
    case_id = driver.start(p.secretariat, "probe", group="chiiki-kyosei")
    task = driver.task(case_id, "work")
    assert task.group_id == "secretariat"
    before = driver.case(case_id)

    with pytest.raises(WorkflowFailed) as err:
        driver.complete(p.secretariat, task.id, {"advice": "x"})
    assert err.value.status == 422
    assert err.value.fields == {"element": "middle"}
    assert "middle" in err.value.message
    after = driver.case(case_id)
    assert after.status == CaseStatus.ERROR
    assert detail in (after.error or "")
    assert after.state == before.state  # the workflow did not move
    assert driver.open_steps(case_id) == ["work"]
    assert driver.completions(case_id) == []
    assert len(driver.history(case_id, EventKind.CASE_ERROR)) == 1
    # other systems hear of it (webhook case.error): the failing element, not the error text
    with driver.factory() as s:
        (event,) = s.scalars(select(OutboxEvent).where(OutboxEvent.case_id == case_id,
                                                       OutboxEvent.kind == OutboxKind.CASE_ERROR))
    assert event.payload["step"] == "middle" and detail not in str(event.payload)
