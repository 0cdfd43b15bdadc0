"""A diagram whose code runs away (endless loop, huge power, huge string, growing list,
recursion) is stopped within its step's budget wherever the code sits: script task, gateway
condition, timer expression, DMN entry, a script after a timer. The step fails with 422
naming the element, the case is marked `error` with the limit's text, and the rest of the
system goes on: another user's write succeeds meanwhile, the timer sweep fires the other
timers."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FrozenClock
from engine.env import Env
from engine.errors import WorkflowFailed
from engine.settings import ROOT, Limits, Settings
from engine.status import CaseStatus, EventKind, TimerStatus
from engine.workflow import specs
from engine.workflow.expressions import (
    MEMORY_LIMIT_MESSAGE,
    SIZE_LIMIT_MESSAGE,
    TIME_LIMIT_MESSAGE,
    ScriptLimitExceeded,
    contained,
    execute,
)
from tests.conftest import Personas
from tests.engine.support import ADVICE, Driver, diagram

BUDGET = 0.2  # CPU seconds per step in these tests
# A stopped runaway returns within a few budgets; a regression hangs, and fails here instead.
JOIN_TIMEOUT = 30

RUNAWAYS = [
    pytest.param("i = 0\nwhile i >= 0:\n    i = i + 1", TIME_LIMIT_MESSAGE, id="while-loop"),
    pytest.param("n = 10\nx = n ** n ** n", SIZE_LIMIT_MESSAGE, id="power-tower"),
    pytest.param("x = 'a' * 10**10", SIZE_LIMIT_MESSAGE, id="huge-string"),
    pytest.param("items = [0]\nwhile True:\n    items = items + items", SIZE_LIMIT_MESSAGE, id="list-doubling"),
    pytest.param("items = []\nwhile True:\n    items.append(len(items))", TIME_LIMIT_MESSAGE, id="list-growth"),
    pytest.param("s = 'ab'\nwhile True:\n    s += s", SIZE_LIMIT_MESSAGE, id="augmented-doubling"),
    pytest.param("def f(n):\n    return 1 if n == 0 else f(n - 1) + f(n - 1)\nx = f(200)", TIME_LIMIT_MESSAGE,
                 id="exponential-recursion"),
    pytest.param("def f(n):\n    return f(n + 1)\nx = f(0)", SIZE_LIMIT_MESSAGE, id="deep-recursion"),
    pytest.param("x = sum(range(10**15))", TIME_LIMIT_MESSAGE, id="builtin-over-huge-range"),
    pytest.param("x = [i for i in range(10**15)]", TIME_LIMIT_MESSAGE, id="comprehension"),
    pytest.param("while True:\n    try:\n        while True:\n            pass\n    except:\n        pass",
                 TIME_LIMIT_MESSAGE, id="loop-catching-the-limit"),
    pytest.param("x = 'a'.ljust(10**10)", SIZE_LIMIT_MESSAGE, id="padding-method"),
    pytest.param("w = 10**9\nx = f'{1:>{w}}'", SIZE_LIMIT_MESSAGE, id="fstring-width"),
    pytest.param("x = 1 << 10**10", SIZE_LIMIT_MESSAGE, id="shift"),
    pytest.param("items = [0]\nwhile True:\n    list.extend(items, items)", SIZE_LIMIT_MESSAGE,
                 id="method-called-on-the-type"),
    # Small in memory (shared parts), a billion items once written out: as text here, as JSON
    # when the case is stored after the step, where no budget would reach.
    pytest.param("a = [0] * 1000\nb = [a] * 1000\nc = [b] * 1000\nx = str(c)", SIZE_LIMIT_MESSAGE,
                 id="shared-nesting-as-text"),
    pytest.param("a = [0] * 1000\nb = [a] * 1000\nc = [b] * 1000", SIZE_LIMIT_MESSAGE,
                 id="shared-nesting-left-in-task-data"),
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, script_cpu_seconds=BUDGET)


def bounded(fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """Run `fn` in a thread; fail the test (rather than hang it) if it is not done in time."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test to assert on
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(JOIN_TIMEOUT)
    assert not thread.is_alive(), f"still running after {JOIN_TIMEOUT}s: the runaway was not stopped"
    return out.get("value"), out.get("error")


def deploy(driver: Driver, folder: Path) -> None:
    with driver.factory() as s:
        specs.deploy(s, specs.read_sources(folder, ROOT / "forms"), driver.env.org, driver.clock.now())


def assert_contained(driver: Driver, case_id: str, error: BaseException | None, element: str,
                     message: str) -> None:
    assert isinstance(error, WorkflowFailed), error
    assert error.status == 422
    assert error.fields == {"element": element}
    assert element in error.message and message.split(" / ")[1] in error.message
    case = driver.case(case_id)
    assert case.status == CaseStatus.ERROR
    assert message.split(" / ")[0] in (case.error or "") and element in (case.error or "")
    assert len(driver.history(case_id, EventKind.CASE_ERROR)) == 1


@pytest.mark.parametrize(("script", "message"), RUNAWAYS)
def test_runaway_script_task_is_stopped_and_marks_the_case(
        driver: Driver, personas: Personas, tmp_path: Path, script: str, message: str) -> None:
    deploy(driver, diagram(tmp_path, script=script))
    case_id = driver.start(personas.secretariat, "probe", group="chiiki-kyosei")
    task = driver.task(case_id, "work")
    before = driver.case(case_id).state

    _, error = bounded(lambda: driver.complete(personas.secretariat, task.id, ADVICE))

    assert_contained(driver, case_id, error, "middle", message)
    assert driver.case(case_id).state == before  # the workflow did not move
    assert driver.open_steps(case_id) == ["work"]


def test_runaway_gateway_condition_is_stopped(driver: Driver, personas: Personas, tmp_path: Path) -> None:
    deploy(driver, diagram(tmp_path, condition="sum(range(10**15)) > 0"))
    case_id = driver.start(personas.secretariat, "probe", group="chiiki-kyosei")
    task = driver.task(case_id, "work")
    _, error = bounded(lambda: driver.complete(personas.secretariat, task.id, ADVICE))
    assert_contained(driver, case_id, error, "choice", TIME_LIMIT_MESSAGE)


def test_a_step_shares_one_budget_across_its_scripts(driver: Driver, personas: Personas, tmp_path: Path) -> None:
    """Script and condition each run under the budget, yet not each with a budget of their own:
    a step of many slow pieces still ends."""
    slow = "total = 0\nfor i in range(2000000):\n    total = total + 1"
    deploy(driver, diagram(tmp_path, script=slow, condition="sum(i for i in range(2000000)) > 0"))
    case_id = driver.start(personas.secretariat, "probe", group="chiiki-kyosei")
    task = driver.task(case_id, "work")
    _, error = bounded(lambda: driver.complete(personas.secretariat, task.id, ADVICE))
    assert isinstance(error, WorkflowFailed)
    assert TIME_LIMIT_MESSAGE.split(" / ")[1] in error.message


def test_normal_scripts_still_run_under_the_guards() -> None:
    data: dict[str, Any] = {"items": [3, 1, 2], "name": "佐藤"}
    script = ("total = 0\nfor i in items:\n    total += i\n"
              "doubled = [i * 2 for i in items]\nlabel = f'{name:>4}' + '様' * 2\n"
              "big = 2 ** 64 * 3\nsquares = {i: i ** 2 for i in range(5)}\nline = ', '.join(str(i) for i in items)\n"
              "padded = str(total).zfill(5)\nshare = 10 / 4 * 1.5\nwords = 'a-b'.replace('-', ' ')\n"
              "pct = '%d%%' % total\nordered = sorted(items)\nis_text = isinstance(name, str)\n"
              "shout = str.upper('ok') + f'{items}'\n")
    with contained(Limits(BUDGET, 256)):
        execute(script, data)
    assert (data["total"], data["doubled"], data["label"]) == (6, [6, 2, 4], "  佐藤様様")
    assert data["big"] == 3 * 2 ** 64 and data["squares"][4] == 16 and data["line"] == "3, 1, 2"
    assert (data["padded"], data["share"], data["words"], data["pct"]) == ("00006", 3.75, "a b", "6%")
    assert data["ordered"] == [1, 2, 3]
    assert data["is_text"] is True and data["shout"] == "OK[3, 1, 2]"


def test_memory_growth_over_the_bound_is_stopped() -> None:
    """Below every size guard each piece, but together far over the memory bound."""
    script = "kept = []\nwhile True:\n    kept.append('x' * 900000 + str(len(kept)))"
    _, error = bounded(lambda: _run_contained(script, Limits(30, 64)))
    assert isinstance(error, ScriptLimitExceeded), error
    assert error.message == MEMORY_LIMIT_MESSAGE


def _run_contained(script: str, limits: Limits) -> None:
    with contained(limits):
        execute(script, {})


def test_limit_once_crossed_cannot_be_caught_by_the_script() -> None:
    script = "try:\n    x = 'a' * 10**10\nexcept:\n    x = 'caught'\n"
    with pytest.raises(ScriptLimitExceeded) as err, contained(Limits(BUDGET, 256)):
        execute(script, {})
    assert err.value.message == SIZE_LIMIT_MESSAGE


def test_other_writes_succeed_while_a_runaway_step_runs(driver: Driver, personas: Personas,
                                                        tmp_path: Path) -> None:
    """The runaway holds the write transaction (on SQLite, the database's write lock) only for
    its budget: another user opening a case meanwhile waits at most that long and succeeds."""
    deploy(driver, diagram(tmp_path, script="i = 0\nwhile i >= 0:\n    i = i + 1"))
    case_id = driver.start(personas.secretariat, "probe", group="chiiki-kyosei")
    task = driver.task(case_id, "work")
    started = threading.Event()
    results: dict[str, Any] = {}

    def runaway() -> None:
        started.set()
        try:
            driver.complete(personas.secretariat, task.id, ADVICE)
        except WorkflowFailed as exc:
            results["runaway"] = exc

    def other() -> None:
        started.wait(JOIN_TIMEOUT)
        results["other"] = driver.start(personas.caseworker, "multi_agency")

    threads = [threading.Thread(target=runaway, daemon=True), threading.Thread(target=other, daemon=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT)
        assert not t.is_alive()
    assert isinstance(results.get("runaway"), WorkflowFailed)
    assert driver.case(results["other"]).status == CaseStatus.ACTIVE
    assert driver.open_steps(results["other"]) == ["intake"]


# ---------------------------------------------------------------- timers and DMN

TIMER_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    id="Definitions_{key}" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="{key}" name="タイマー試験" isExecutable="true">
    <bpmn:laneSet id="LaneSet_{key}">
      <bpmn:lane id="Lane_{key}" name="事務局">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>work</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>wait</bpmn:flowNodeRef><bpmn:flowNodeRef>after</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="work" name="作業">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="formKey" value="advice" />
          <spiffworkflow:property name="dueIn" value="P1D" />
        </spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:intermediateCatchEvent id="wait" name="待機">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:timerEventDefinition id="wait_def">
        <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">{duration}</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:scriptTask id="after" name="後処理">
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work" />
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="wait" />
    <bpmn:sequenceFlow id="f3" sourceRef="wait" targetRef="after" />
    <bpmn:sequenceFlow id="f4" sourceRef="after" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def timer_diagram(tmp_path: Path, key: str, duration: str, script: str) -> Path:
    folder = tmp_path / key
    folder.mkdir()
    esc = {k: v.replace("&", "&amp;").replace("<", "&lt;") for k, v in
           {"key": key, "duration": duration, "script": script}.items()}
    (folder / f"{key}.bpmn").write_text(TIMER_BPMN.format(**esc), encoding="utf-8")
    return folder


def test_runaway_timer_expression_is_stopped(driver: Driver, personas: Personas, tmp_path: Path) -> None:
    deploy(driver, timer_diagram(tmp_path, "slow_timer", "'PT' + str(sum(range(10**15))) + 'H'", "done = True"))
    case_id = driver.start(personas.secretariat, "slow_timer", group="chiiki-kyosei")
    task = driver.task(case_id, "work")
    _, error = bounded(lambda: driver.complete(personas.secretariat, task.id, ADVICE))
    assert_contained(driver, case_id, error, "wait", TIME_LIMIT_MESSAGE)


def test_runaway_after_a_timer_marks_its_case_and_the_sweep_fires_the_others(
        driver: Driver, personas: Personas, tmp_path: Path, clock: FrozenClock) -> None:
    deploy(driver, timer_diagram(tmp_path, "runaway_after", "'PT1H'", "i = 0\nwhile i >= 0:\n    i = i + 1"))
    deploy(driver, timer_diagram(tmp_path, "fine_after", "'PT1H'", "done = True"))
    cases = {}
    for key in ("runaway_after", "fine_after", "runaway_after", "fine_after"):
        case_id = driver.start(personas.secretariat, key, group="chiiki-kyosei")
        driver.complete(personas.secretariat, driver.task(case_id, "work").id, ADVICE)
        cases[case_id] = key
    clock.advance(hours=2)

    fired, error = bounded(driver.fire)

    assert error is None
    assert fired == 2
    for case_id, key in cases.items():
        case = driver.case(case_id)
        (timer,) = driver.timers(case_id)
        if key == "fine_after":
            assert case.status == CaseStatus.COMPLETED and timer.status == TimerStatus.FIRED
        else:
            assert case.status == CaseStatus.ERROR
            assert TIME_LIMIT_MESSAGE.split(" / ")[0] in (case.error or "") and "after" in (case.error or "")
            # Retrying would only run away again: the timer fails at once, with the reason.
            assert timer.status == TimerStatus.FAILED
            assert "after" in (timer.last_error or "")
    assert bounded(driver.fire) == (0, None)


DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="Definitions_slow_rule" name="試験"
    namespace="https://tsunagu.example/dmn/slow_rule">
  <decision id="slow_rule" name="試験の判定">
    <decisionTable id="Table_slow_rule" hitPolicy="FIRST">
      <input id="Input_advice" label="助言">
        <inputExpression id="InputExpression_advice" typeRef="string"><text>advice</text></inputExpression>
      </input>
      <output id="Output_result" label="結果" name="result" typeRef="string" />
      <rule id="Rule_slow">
        <inputEntry id="Rule_slow_advice"><text>-</text></inputEntry>
        <outputEntry id="Rule_slow_result"><text>{output}</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
</definitions>
"""


def test_runaway_dmn_entry_is_stopped(driver: Driver, personas: Personas, tmp_path: Path) -> None:
    folder = diagram(tmp_path)
    path = folder / "probe.bpmn"
    text = path.read_text(encoding="utf-8")
    start = text.index('<bpmn:scriptTask id="middle"')
    end = text.index("</bpmn:scriptTask>") + len("</bpmn:scriptTask>")
    rule = ('<bpmn:businessRuleTask id="middle" name="判定"><bpmn:extensionElements>'
            '<spiffworkflow:calledDecisionId>slow_rule</spiffworkflow:calledDecisionId>'
            '</bpmn:extensionElements><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>'
            '</bpmn:businessRuleTask>')
    path.write_text(text[:start] + rule + text[end:].replace("total == 2", "True"), encoding="utf-8")
    (folder / "slow_rule.dmn").write_text(DMN.format(output="str(sum(range(10**15)))"), encoding="utf-8")
    deploy(driver, folder)
    case_id = driver.start(personas.secretariat, "probe", group="chiiki-kyosei")
    task = driver.task(case_id, "work")
    _, error = bounded(lambda: driver.complete(personas.secretariat, task.id, ADVICE))
    assert_contained(driver, case_id, error, "middle", TIME_LIMIT_MESSAGE)


def test_runaway_when_opening_a_case_is_refused_and_opens_nothing(
        session_factory: sessionmaker[Session], env: Env, driver: Driver, personas: Personas,
        tmp_path: Path) -> None:
    """A script right after the start event runs while the case is being opened: the request
    fails naming the element and no case is left behind."""
    folder = diagram(tmp_path)
    path = folder / "probe.bpmn"
    text = path.read_text(encoding="utf-8")
    text = (text.replace('<bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>',
                         '<bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>'
                         '<bpmn:scriptTask id="first" name="初期化"><bpmn:incoming>f0</bpmn:incoming>'
                         '<bpmn:outgoing>f1</bpmn:outgoing><bpmn:script>x = 7 ** 7 ** 7</bpmn:script>'
                         '</bpmn:scriptTask><bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="first" />')
            .replace('<bpmn:sequenceFlow id="f1" sourceRef="start"', '<bpmn:sequenceFlow id="f1" sourceRef="first"')
            .replace("<bpmn:flowNodeRef>start</bpmn:flowNodeRef>",
                     "<bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>first</bpmn:flowNodeRef>"))
    path.write_text(text, encoding="utf-8")
    deploy(driver, folder)
    from engine.models import Case

    before = driver.count(Case)
    _, error = bounded(lambda: driver.start(personas.secretariat, "probe", group="chiiki-kyosei"))
    assert isinstance(error, WorkflowFailed) and error.status == 422
    assert error.fields == {"element": "first"}
    assert SIZE_LIMIT_MESSAGE.split(" / ")[1] in error.message
    assert driver.count(Case) == before


@pytest.mark.parametrize(("name", "value"), [("TSUNAGU_SCRIPT_CPU_SECONDS", "abc"), ("TSUNAGU_SCRIPT_CPU_SECONDS", "0"),
                                             ("TSUNAGU_SCRIPT_MEMORY_MB", "-1"), ("TSUNAGU_SCRIPT_CPU_SECONDS", "inf")])
def test_nonsense_limit_settings_are_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch, name: str,
                                                                 value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        Settings()


def test_limit_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSUNAGU_SCRIPT_CPU_SECONDS", "0.5")
    monkeypatch.setenv("TSUNAGU_SCRIPT_MEMORY_MB", "0")
    assert Settings().script_limits == Limits(0.5, 0.0)
