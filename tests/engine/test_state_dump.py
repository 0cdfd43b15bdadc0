"""What a case's stored workflow state is: the dict Spiff's own converters make (less the spec),
written by our leaner task serializer, and values JSON lacks converted as Spiff's encoder does."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from engine.workflow import runtime
from tests.conftest import Personas
from tests.engine.support import ASSESSMENT, Driver, intake, monitoring, plan, waiting_case


class SpiffsOwn(BpmnWorkflowConverter):
    """The state as Spiff's TaskConverter writes each task (what runtime.dump wrote before)."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct


REFERENCE = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure({**SPIFF_CONFIG, BpmnWorkflow: SpiffsOwn}))


def spiffs_own_dump(wf: BpmnWorkflow) -> str:
    runtime.prune(wf)
    return json.dumps(REFERENCE.to_dict(wf), separators=(",", ":"), ensure_ascii=False)


def test_the_stored_state_is_what_spiffs_own_converter_writes(driver: Driver, personas: Personas) -> None:
    p = personas
    case_id = driver.start(p.caseworker)
    states = [driver.case(case_id)]
    driver.complete_step(p.caseworker, case_id, "intake", intake())
    states.append(driver.case(case_id))
    driver.complete_step(p.secretariat, case_id, "assessment", ASSESSMENT)
    driver.complete_step(p.secretariat, case_id, "plan", plan("P14D"))
    states.append(driver.case(case_id))
    case_id = waiting_case(driver, personas)
    states.append(driver.case(case_id))
    driver.clock.advance(days=15)
    assert driver.fire() == 1
    states.append(driver.case(case_id))  # parallel role reports, a boundary timer
    driver.complete_step(p.secretariat, case_id, "monitoring", monitoring("continue"))
    states.append(driver.case(case_id))
    for case in states:
        wf = driver.workflow(case)
        theirs = spiffs_own_dump(driver.workflow(case))
        assert runtime.dump(wf) == theirs
        assert len(json.loads(theirs)["tasks"]) > 3


def test_a_date_in_task_data_is_stored_and_comes_back_a_date(driver: Driver, personas: Personas) -> None:
    case_id = driver.start(personas.caseworker)
    case = driver.case(case_id)
    wf = driver.workflow(case)
    (task,) = [t for t in wf.get_tasks() if t.task_spec.bpmn_id == "intake"]
    when = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
    task.data["seen_on"] = when
    task.data["nested"] = {"at": [when]}
    again = runtime.load(driver.env.specs.for_case(case), runtime.dump(wf), runtime.SERIALIZER_VERSION)
    (back,) = [t for t in again.get_tasks() if t.task_spec.bpmn_id == "intake"]
    assert back.data["seen_on"] == when
    assert back.data["nested"] == {"at": [when]}
