"""A designer's own diagrams and forms: deploy-time validation that lists every fault and
warning, case meaning declared on form fields (x-tsunagu), case number prefixes that do not
collide, and a case that can go no further is never left active waiting for nothing."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from engine.casework import messages
from engine.errors import DeployError, DomainError
from engine.models import Case, CaseMember, ProcessDefinition
from engine.ops.check import check_case
from engine.settings import ROOT
from engine.status import CaseStatus
from engine.workflow import specs
from tests.api.elements import HEAD, TAIL
from tests.conftest import Personas
from tests.engine.support import Driver

FORMS = specs.read_forms(ROOT / "forms")


def xml(key: str, body: str) -> str:
    return HEAD.format(key=key) + body + TAIL


def user_task(tid: str, form: str | None = None, lane: str | None = None) -> str:
    props = (f'<bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property name="formKey" '
             f'value="{form}" /></spiffworkflow:properties></bpmn:extensionElements>') if form else ""
    return f'<bpmn:userTask id="{tid}" name="{tid}">{props}</bpmn:userTask>\n'


def simple(key: str, *steps: str, forms: dict[str, Any] | None = None) -> specs.Sources:
    ids = ["start", *[s.split('"')[1] for s in steps], "end"]
    body = '<bpmn:startEvent id="start" />\n<bpmn:endEvent id="end" />\n' + "".join(steps) + "".join(
        f'<bpmn:sequenceFlow id="f{i}" sourceRef="{a}" targetRef="{b}" />\n' for i, (a, b) in enumerate(zip(ids, ids[1:], strict=False)))
    return specs.Sources({f"{key}.bpmn": xml(key, body)}, {}, {**FORMS, **(forms or {})})


def deploy(driver: Driver, sources: specs.Sources) -> None:
    with driver.factory() as s:
        specs.deploy(s, sources, driver.env.org, driver.clock.now())


def test_validate_lists_every_refusal_and_warning_each_naming_its_element(driver: Driver) -> None:
    sources = simple("broken", user_task("a", form="no_such_form"), user_task("b"),
                     '<bpmn:task id="c" name="c"><bpmn:extensionElements><spiffworkflow:properties>'
                     '<spiffworkflow:property name="dueIn" value="two weeks" /></spiffworkflow:properties>'
                     '</bpmn:extensionElements></bpmn:task>\n')
    errors, warnings = specs.validate(sources, driver.env.org)
    assert {e["element"] for e in errors} == {"a", "c"}
    assert "no_such_form" in next(e["message"] for e in errors if e["element"] == "a")
    assert "ISO 8601" in next(e["message"] for e in errors if e["element"] == "c")
    assert any(w["element"] == "b" and "confirmation" in w["message"] for w in warnings)
    with pytest.raises(DeployError) as err:
        specs.check_sources(sources, driver.env.org)
    assert err.value.element == "a"
    assert specs.validate(simple("fine", user_task("x", form="advice")), driver.env.org)[0] == []


def test_a_service_task_is_refused_with_what_to_use_instead(driver: Driver) -> None:
    errors, _ = specs.validate(simple("svc", '<bpmn:serviceTask id="call_api" name="API" />\n'), driver.env.org)
    assert errors == [{"element": "call_api", "message": specs.SERVICE_TASK}]
    assert "use a script task or a user task" in specs.SERVICE_TASK


def test_an_interrupting_event_subprocess_deploys_with_a_warning(driver: Driver) -> None:
    body = ('<bpmn:subProcess id="ev" triggeredByEvent="true"><bpmn:startEvent id="ev_start">'
            '<bpmn:messageEventDefinition messageRef="msg_reply" /></bpmn:startEvent><bpmn:endEvent id="ev_end" />'
            '<bpmn:sequenceFlow id="fe" sourceRef="ev_start" targetRef="ev_end" /></bpmn:subProcess>\n')
    errors, warnings = specs.validate(simple("evsub", user_task("x", form="advice"), body), driver.env.org)
    assert errors == []
    assert [w["element"] for w in warnings if "interrupt" in w["message"]] == ["ev_start"]


DESIGNED_FORM = {
    "type": "object",
    "properties": {
        "gaiyou": {"type": "string", "title": "概要", "x-tsunagu": "case.summary"},
        "kikan": {"type": "array", "items": {"type": "string", "format": "group"}, "x-tsunagu": "case.participants"},
        "doui": {"type": "string", "enum": ["given", "not_given", "unknown"], "x-tsunagu": "case.consent"},
        "summary": {"type": "string", "title": "a field that only happens to be called summary"},
    },
}


def test_a_designers_form_gives_the_case_the_meaning_its_fields_declare(driver: Driver, personas: Personas) -> None:
    deploy(driver, simple("designed", user_task("record", form="designed_form"), forms={"designed_form": DESIGNED_FORM}))
    case_id = driver.start(personas.supervisor, "designed", {}, "secretariat")
    driver.complete_step(personas.supervisor, case_id, "record",
                         {"gaiyou": "独居高齢者の見守り", "kikan": ["choju-anshin"], "doui": "given", "summary": "ignored"})
    case = driver.case(case_id)
    assert (case.summary, case.consent) == ("独居高齢者の見守り", "given")
    with driver.factory() as s:
        assert list(s.scalars(select(CaseMember.group_id).where(CaseMember.case_id == case_id))) == ["choju-anshin"]


def test_our_forms_declare_the_meaning_they_give_the_case() -> None:
    declared = {(key, name, prop["x-tsunagu"]) for key, form in FORMS.items()
                for name, prop in form.get("properties", {}).items() if "x-tsunagu" in prop}
    assert declared == {("intake", "summary", "case.summary"), ("intake", "consent", "case.consent"),
                        ("outreach_assign", "summary", "case.summary"),
                        ("outreach_home_visit", "consent", "case.consent"),
                        ("support_meeting", "participants", "case.participants"),
                        ("support_meeting", "roles", "case.roles")}


def test_a_form_declaring_an_unknown_meaning_is_refused(tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "odd.json").write_text('{"type": "object", "properties": {"a": {"type": "string", '
                                       '"x-tsunagu": "case.owner"}}}', encoding="utf-8")
    with pytest.raises(DeployError) as err:
        specs.read_forms(tmp_path)
    assert err.value.file == "odd.json" and "case.owner" in err.value.message


def test_case_number_prefixes_of_new_processes_do_not_collide(driver: Driver, personas: Personas) -> None:
    for key in ("main", "mainline", "probe"):
        deploy(driver, simple(key, user_task("x", form="advice")))
    numbers = {key: driver.case(driver.start(personas.supervisor, key, {}, "secretariat")).number
               for key in ("main", "multi_agency", "mainline", "probe", "main")}
    prefixes = {key: number.split("-")[0] for key, number in numbers.items()}
    assert prefixes == {"main": "MAI", "multi_agency": "MA", "mainline": "MAIN", "probe": "PR"}
    # A process keeps its prefix: the second main case continues its sequence.
    assert numbers["main"].endswith("-00002")


def test_concurrent_first_cases_of_a_process_share_one_prefix(driver: Driver, personas: Personas) -> None:
    """The first cases of a fresh system arrive together (as under load after a restart): none
    is refused for losing the race to claim its process's prefix."""
    deploy(driver, simple("probe", user_task("x", form="advice")))
    barrier = threading.Barrier(6)
    numbers: list[str] = []
    failures: list[BaseException] = []

    def first_case(key: str) -> None:
        try:
            barrier.wait(10)
            numbers.append(driver.case(driver.start(personas.supervisor, key, {}, "secretariat")).number)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=first_case, args=(key,)) for key in ["probe", "multi_agency"] * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    assert sorted(n.split("-")[0] for n in numbers) == ["MA"] * 3 + ["PR"] * 3
    assert len(set(numbers)) == 6


# SpiffWorkflow's own: a loop back into a parallel join, which then waits for a token that
# never comes once the loop's task is done.
DEADLOCK = Path(__file__).parent / "data" / "spiff_suite" / "gateway_loop_input.bpmn"


def test_a_case_that_can_go_no_further_is_an_error_and_check_reports_one_left_active(
        driver: Driver, personas: Personas) -> None:
    deploy(driver, specs.Sources({DEADLOCK.name: DEADLOCK.read_text(encoding="utf-8")}, {}, FORMS))
    case_id = driver.start(personas.supervisor, "main", {}, "secretariat")
    driver.complete_step(personas.supervisor, case_id, "task", {})
    case = driver.case(case_id)
    assert case.status == CaseStatus.ERROR
    assert "parallel" in case.error and "can go no further" in case.error
    # As an older version of the engine would have left it: active, waiting for nothing.
    with driver.factory() as s:
        s.execute(update(Case).where(Case.id == case_id).values(status=CaseStatus.ACTIVE, error=None))
        s.commit()
        problems = check_case(s, driver.env, s.get(Case, case_id))
    assert any("waits for nothing" in p.what for p in problems)


def test_a_stored_version_that_todays_checks_refuse_still_loads_and_fails_cleanly(
        driver: Driver, personas: Personas) -> None:
    """A service task deployed before it was refused: its cases fail with the element named (422),
    and message routing, which loads every latest version, is not broken by it."""
    name, key = "spiff_service_task.bpmn", "service_task_example1"
    xml_text = (Path(__file__).parent / "data" / "spiff_suite" / name).read_text(encoding="utf-8")
    with driver.factory() as s:
        s.add(ProcessDefinition(process_key=key, version=1, name=key, content_hash="legacy",
                                bundle={"bpmn": {name: xml_text}, "dmn": {}, "forms": {}},
                                deployed_at=driver.clock.now(), deployed_by=None))
        s.commit()
    with pytest.raises(DomainError) as err:
        driver.start(personas.supervisor, key, {}, "secretariat")
    assert err.value.status == 422
    with driver.factory() as s:
        assert messages.starting_process(s, driver.env, "no_such_message", None) is None
