"""Each BPMN element type the engine runs, deployed on its own and run start to end through
the API: human steps completed through /api/tasks, messages sent through /api/messages, timers
fired as the controllable clock moves. While a case is active, `waiting` always names what
it waits for; the served form is plain JSON Schema."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from engine.casework import timers
from engine.settings import ROOT
from engine.workflow import specs
from tests.api.elements import BODIES, diagram


@pytest.fixture
def run(api, session_factory, env, clock):  # noqa: ANN001, ANN201
    """run(key) deploys the element's diagram and starts a case of it; returns a Case helper."""
    def start(key: str) -> Case:
        with session_factory() as s:
            specs.deploy(s, specs.Sources({f"{key}.bpmn": diagram(key)}, {}, specs.read_forms(ROOT / "forms")),
                         env.org, clock.now())
        client = api("secretariat")
        r = client.post("/api/cases", json={"process": key, "group": "secretariat", "data": {}})
        assert r.status_code == 201, r.get_json()
        return Case(client, r.get_json()["id"], lambda: timers.fire_due(session_factory, env, clock.now()), clock)
    return start


class Case:
    def __init__(self, client, case_id: str, fire, clock) -> None:  # noqa: ANN001
        self.client, self.id, self.fire, self.clock = client, case_id, fire, clock

    def read(self) -> dict[str, Any]:
        r = self.client.get(f"/api/cases/{self.id}")
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        if body["status"] == "active":
            assert body["waiting"], "an active case waits for something it names"
        return body

    def kinds(self) -> list[str]:
        return sorted(w["kind"] for w in self.read()["waiting"])

    def steps(self) -> list[str]:
        return sorted(t["step"] for t in self.read()["open_tasks"])

    def complete(self, step: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        task = next(t for t in self.read()["open_tasks"] if t["step"] == step)
        detail = self.client.get(f"/api/tasks/{task['id']}").get_json()
        Draft202012Validator.check_schema(detail["schema"])
        r = self.client.post(f"/api/tasks/{task['id']}/complete", json={"data": data or {}})
        assert r.status_code == 200, r.get_json()
        return detail

    def send(self, message: str) -> None:
        r = self.client.post(f"/api/messages/{message}", json={"data": {}})
        assert r.status_code == 202, r.get_json()
        assert r.get_json()["case_id"] == self.id

    def status(self) -> str:
        return self.read()["status"]


def test_every_element_diagram_is_tested() -> None:
    names = [name for name in globals() if name.startswith("test_el_")]
    assert [key for key in BODIES if not any(n.startswith(f"test_{key}_") for n in names)] == []


def test_el_plain_task_runs_as_a_confirmation_step_showing_its_documentation(run) -> None:  # noqa: ANN001
    case = run("el_plain_task")
    assert case.kinds() == ["task"]
    task = case.read()["open_tasks"][0]
    assert task["group"] == "secretariat"  # no lane: the referring group's
    detail = case.complete("look")
    assert detail["schema"]["x-tsunagu-confirmation"] is True
    assert "書類" in detail["schema"]["description"]
    assert case.status() == "completed"


def test_el_manual_task_runs_as_a_confirmation_step(run) -> None:  # noqa: ANN001
    case = run("el_manual_task")
    assert case.steps() == ["visit"]
    case.complete("visit")
    assert case.status() == "completed"


def test_el_user_task_no_form_runs_as_a_confirmation_that_takes_no_answers(run) -> None:  # noqa: ANN001
    case = run("el_user_task_no_form")
    task = case.read()["open_tasks"][0]
    r = case.client.post(f"/api/tasks/{task['id']}/complete", json={"data": {"summary": "x"}})
    assert r.status_code == 422 and "summary" in r.get_json()["error"]["fields"]
    case.complete("ok")
    assert case.status() == "completed"


def test_el_camunda_form_key_names_an_existing_form(run) -> None:  # noqa: ANN001
    case = run("el_camunda_form_key")
    detail = case.complete("advise", {"advice": "長寿安心課と連携してください"})
    assert "advice" in detail["schema"]["properties"]
    assert case.status() == "completed"


def test_el_camunda_form_data_becomes_a_json_schema_form(run) -> None:  # noqa: ANN001
    case = run("el_camunda_form_data")
    task = case.read()["open_tasks"][0]
    r = case.client.post(f"/api/tasks/{task['id']}/complete", json={"data": {"level": "low"}})
    assert r.status_code == 422 and "note_text" in r.get_json()["error"]["fields"]
    detail = case.complete("note", {"note_text": "訪問済み", "level": "high"})
    assert detail["schema"]["properties"]["level"]["oneOf"][1] == {"const": "high", "title": "高"}
    assert case.status() == "completed"


def test_el_spiff_form_names_a_form_by_its_file(run) -> None:  # noqa: ANN001
    case = run("el_spiff_form")
    detail = case.complete("ack", {"acknowledged": True})
    assert "acknowledged" in detail["schema"]["properties"]
    assert case.status() == "completed"


def test_el_event_subprocess_runs_when_its_message_arrives(run) -> None:  # noqa: ANN001
    case = run("el_event_subprocess")
    assert case.kinds() == ["message", "task"]
    case.send("el_interrupt")
    assert case.steps() == ["handle_interrupt", "wait_here"]  # non-interrupting: both go on
    case.complete("handle_interrupt")
    assert case.status() == "active"
    case.complete("wait_here")
    assert case.status() == "completed"


def test_el_parallel_mi_opens_one_task_per_instance(run) -> None:  # noqa: ANN001
    case = run("el_parallel_mi")
    assert case.steps() == ["each", "each", "each"]
    for _ in range(3):
        case.complete("each")
    assert case.status() == "completed"


def test_el_sequential_mi_opens_one_task_at_a_time(run) -> None:  # noqa: ANN001
    case = run("el_sequential_mi")
    assert case.steps() == ["each"]
    case.complete("each")
    assert case.steps() == ["each"]
    case.complete("each")
    assert case.status() == "completed"


def test_el_standard_loop_repeats_until_its_condition_holds(run) -> None:  # noqa: ANN001
    case = run("el_standard_loop")
    case.complete("again", {"done": False})
    assert case.steps() == ["again"]
    case.complete("again", {"done": True})
    assert case.status() == "completed"


def test_el_boundary_timer_fires_with_the_clock(run) -> None:  # noqa: ANN001
    case = run("el_boundary_timer")
    assert case.kinds() == ["task", "timer"]
    case.clock.advance(timedelta(minutes=59))
    assert case.fire() == 0
    case.clock.advance(timedelta(minutes=2))
    assert case.fire() == 1
    assert case.status() == "completed"
    assert case.read()["open_tasks"] == []


def test_el_boundary_message_cancels_the_task(run) -> None:  # noqa: ANN001
    case = run("el_boundary_message")
    assert case.kinds() == ["message", "task"]
    case.send("el_cancel")
    assert case.status() == "completed"


def test_el_boundary_error_leads_to_the_recovery_step(run) -> None:  # noqa: ANN001
    case = run("el_boundary_error")
    assert case.steps() == ["recover"]
    case.complete("recover")
    assert case.status() == "completed"


def test_el_boundary_escalation_adds_a_step_and_keeps_the_work(run) -> None:  # noqa: ANN001
    case = run("el_boundary_escalation")
    assert case.steps() == ["inner_task", "report"]
    case.complete("report")
    case.complete("inner_task")
    assert case.status() == "completed"


def test_el_message_catch_waits_for_its_message(run) -> None:  # noqa: ANN001
    case = run("el_message_catch")
    waiting = case.read()["waiting"]
    assert [(w["kind"], w["step"]) for w in waiting] == [("message", "reply")]
    case.send("el_reply")
    assert case.status() == "completed"


def test_el_receive_task_waits_for_its_message(run) -> None:  # noqa: ANN001
    case = run("el_receive_task")
    assert case.kinds() == ["message"]
    case.send("el_receive")
    assert case.status() == "completed"


def test_el_signal_catch_waits_until_the_signal_is_thrown(run) -> None:  # noqa: ANN001
    case = run("el_signal")
    assert case.kinds() == ["signal", "task"]
    case.complete("decide")
    assert case.status() == "completed"
