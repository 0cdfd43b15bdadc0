"""Process versions: a repeated deployment is a no-op, a changed diagram is a new
version, and running cases stay on the version they started on."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import select

from engine.models import Case, ProcessDefinition
from engine.settings import ROOT
from engine.status import CaseStatus
from engine.workflow import specs
from tests.conftest import Personas
from tests.engine.support import (
    ASSESSMENT,
    CLOSURE,
    Driver,
    intake,
    meeting,
    monitoring,
    plan,
    walk_emergency,
)

PROCESSES = ROOT / "processes"
FORMS = ROOT / "forms"
OLD_NAME = 'name="5. モニタリング"'
NEW_NAME = 'name="5. モニタリング（定期確認）"'


def deploy(driver: Driver, folder: Path) -> dict[str, specs.DeployResult]:
    with driver.factory() as s:
        results = specs.deploy(s, specs.read_sources(folder, FORMS), driver.env.org, driver.clock.now())
    return {r.process_key: r for r in results}


def changed_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "processes"
    shutil.copytree(PROCESSES, folder)
    bpmn = folder / "multi_agency.bpmn"
    text = bpmn.read_text(encoding="utf-8")
    assert text.count(OLD_NAME) == 1
    bpmn.write_text(text.replace(OLD_NAME, NEW_NAME), encoding="utf-8")
    return folder


def test_deploying_the_same_files_again_makes_no_new_version(driver: Driver) -> None:
    before = [(d.id, d.process_key, d.version, d.content_hash) for d in driver.definitions()]
    assert [(k, v) for _, k, v, _ in before] == [("emergency", 1), ("multi_agency", 1), ("outreach", 1),
                                                 ("participation", 1)]
    for _ in range(2):
        results = deploy(driver, PROCESSES)
        assert {k: (r.version, r.created) for k, r in results.items()} == {
            "emergency": (1, False), "multi_agency": (1, False), "outreach": (1, False), "participation": (1, False)}
    assert [(d.id, d.process_key, d.version, d.content_hash) for d in driver.definitions()] == before


def test_changed_diagram_deploys_version_2_and_only_for_that_process(driver: Driver, tmp_path: Path) -> None:
    results = deploy(driver, changed_copy(tmp_path))
    assert (results["multi_agency"].version, results["multi_agency"].created) == (2, True)
    assert (results["emergency"].version, results["emergency"].created) == (1, False)
    assert [d.version for d in driver.definitions("multi_agency")] == [1, 2]
    assert driver.count(ProcessDefinition) == 5  # four processes, multi_agency twice
    # Deploying the changed files again is again a no-op.
    again = deploy(driver, changed_copy(tmp_path / "again"))
    assert (again["multi_agency"].version, again["multi_agency"].created) == (2, False)
    assert driver.count(ProcessDefinition) == 5


def test_case_started_on_v1_stays_on_v1_and_new_cases_use_v2(driver: Driver, personas: Personas,
                                                              tmp_path: Path) -> None:
    p = personas
    (v1,) = driver.definitions("multi_agency")
    old_id = driver.start(p.caseworker)
    driver.complete_step(p.caseworker, old_id, "intake", intake())
    driver.complete_step(p.secretariat, old_id, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, old_id, "plan", plan("P7D"))
    driver.complete_step(p.secretariat, old_id, "meeting", meeting())

    v2_id = deploy(driver, changed_copy(tmp_path))["multi_agency"].definition_id
    assert v2_id != v1.id

    new_id = driver.start(p.caseworker)
    assert driver.case(new_id).definition_id == v2_id
    assert driver.case(old_id).definition_id == v1.id

    # The old case's timer fires and it runs to the end on v1, with v1's task names.
    driver.clock.advance(days=8)
    assert driver.fire() == 1
    assert driver.task(old_id, "monitoring").name == "5. モニタリング"
    driver.complete_step(p.secretariat, old_id, "monitoring", monitoring("close"))
    driver.complete_step(p.secretariat, old_id, "closure", CLOSURE)
    old = driver.case(old_id)
    assert old.status == CaseStatus.COMPLETED
    assert old.definition_id == v1.id

    # The new case runs on v2 and shows v2's names.
    driver.complete_step(p.caseworker, new_id, "intake", intake())
    driver.complete_step(p.secretariat, new_id, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, new_id, "plan", plan("P7D"))
    driver.complete_step(p.secretariat, new_id, "meeting", meeting())
    driver.clock.advance(days=8)
    assert driver.fire() == 1
    assert driver.task(new_id, "monitoring").name == "5. モニタリング（定期確認）"
    assert driver.case(new_id).definition_id == v2_id
    driver.check(new_id)


def test_emergency_hand_over_starts_the_latest_multi_agency_version(driver: Driver, personas: Personas,
                                                                    tmp_path: Path) -> None:
    v2_id = deploy(driver, changed_copy(tmp_path))["multi_agency"].definition_id
    walk_emergency(driver, personas, continue_support=True)
    with driver.factory() as s:
        (new,) = s.scalars(select(Case).where(Case.process_key == "multi_agency"))
    assert new.definition_id == v2_id
