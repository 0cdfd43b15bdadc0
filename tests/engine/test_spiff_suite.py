"""BPMN this project did not write: SpiffWorkflow's own test diagrams (tests/engine/data/
spiff_suite), deployed one at a time. Each is either refused at deploy with the element
named and what to do, or every case of it runs without a server error: its human steps are
completed (empty answers, or the form's defaults), its timers fire as the clock moves, and
while it is active it always waits for something it can name."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from engine.errors import DeployError, DomainError
from engine.models import Case
from engine.ops.check import check_case
from engine.settings import ROOT
from engine.status import CaseStatus
from engine.workflow import specs
from engine.workflow.waiting import case_waiting
from tests.conftest import Personas
from tests.engine.support import Driver

SUITE = Path(__file__).parent / "data" / "spiff_suite"
DIAGRAMS = sorted(p.name for p in SUITE.glob("*.bpmn"))

# What must be refused, and a word of the remedy the refusal gives.
REFUSED = {
    "service_task.bpmn": "use a script task or a user task",
    "spiff_service_task.bpmn": "use a script task or a user task",
    "Approvals.bpmn": "isExecutable",  # its processes are not executable
    "lanes.bpmn": "organisation.yaml",  # lanes A, B: no group of the city holds them
    "MessageBoundary.bpmn": "organisation.yaml",
    "noninterrupting-MessageBoundary.bpmn": "organisation.yaml",
    "message_test.bpmn": "organisation.yaml",
    "user_task_variable.bpmn": "add forms/pizza_form.json",
    "single_call_activity.bpmn": "not found",  # calls a process in another file
    "multiple-start.bpmn": "use one event for each",
    "multiple-throw.bpmn": "use one event for each",
    "boundary_event_split.bpmn": "signalRef",  # a signal event naming no signal
}
# Diagrams that deploy but can go no further at some point (a parallel join a token never
# reaches): the case is marked error naming the element, never left active.
STUCK = {"gateway_loop_input.bpmn"}


def sources(name: str) -> specs.Sources:
    dmn = {p.name: p.read_text(encoding="utf-8") for p in SUITE.glob("*.dmn")}
    return specs.Sources({name: (SUITE / name).read_text(encoding="utf-8")}, dmn, specs.read_forms(ROOT / "forms"))


def defaults(schema: dict | None) -> dict:
    props = (schema or {}).get("properties", {})
    return {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}


def test_the_suite_is_representative() -> None:
    assert len(DIAGRAMS) >= 30


@pytest.mark.parametrize("name", DIAGRAMS)
def test_a_foreign_diagram_is_refused_naming_the_element_or_runs(driver: Driver, personas: Personas,
                                                                  name: str) -> None:
    try:
        with driver.factory() as s:
            results = specs.deploy(s, sources(name), driver.env.org, driver.clock.now())
    except DeployError as exc:
        assert exc.element or exc.file, exc.message
        assert name in REFUSED, f"{name} refused: {exc.message}"
        assert REFUSED[name] in exc.message
        return
    assert name not in REFUSED, f"{name} was deployed, but should be refused"
    for result in results:
        run_to_the_end(driver, personas, result.process_key, stuck=name in STUCK)


def run_to_the_end(driver: Driver, personas: Personas, process_key: str, stuck: bool = False) -> None:
    try:
        case_id = driver.start(personas.supervisor, process_key, {}, "secretariat")
    except DomainError as exc:
        # A diagram whose start needs data it was not given says so (422), naming the element.
        assert exc.status == 422, exc.message
        return
    for _ in range(30):
        case = driver.case(case_id)
        if case.status == CaseStatus.ERROR:
            assert stuck and "can go no further" in (case.error or ""), case.error
            return
        if case.status == CaseStatus.COMPLETED:
            break
        with driver.factory() as s:
            waiting = case_waiting(s, s.get(Case, case_id))
            assert check_case(s, driver.env, s.get(Case, case_id)) == [], process_key
        assert waiting, f"{process_key}: active, waiting for nothing"
        tasks = driver.open_tasks(case_id)
        if tasks:
            task = tasks[0]
            schema = driver.env.specs.for_case(case).forms.get(task.form_key) if task.form_key else None
            try:
                driver.complete(personas.supervisor, task.id, defaults(schema))
            except DomainError as exc:
                assert exc.status == 422, exc.message
                return  # the diagram's own script needs answers it was not given
            continue
        timers = [w for w in waiting if w["kind"] == "timer"]
        if not timers:
            return  # waits for a message or a signal: a valid wait
        due = min(t["detail"]["due_at"] for t in timers)
        driver.clock.set(max(driver.clock.now(), _parse(due)) + timedelta(seconds=1))
        driver.fire()


def _parse(text: str):  # noqa: ANN202
    from datetime import datetime
    return datetime.fromisoformat(text)
