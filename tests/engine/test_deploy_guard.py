"""Diagrams that would run code outside task data, or cannot run at all, are refused at
deploy time with the element (or file) named, and nothing is deployed; the restricted
evaluator refuses the same code at run time too."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FrozenClock
from engine.env import Env
from engine.errors import DeployError
from engine.models import ProcessDefinition
from engine.settings import ROOT
from engine.workflow import specs
from engine.workflow.expressions import UnsafeCode, evaluate, execute
from tests.engine.support import Driver, diagram

FORMS = ROOT / "forms"

def deploy(factory: sessionmaker[Session], env: Env, clock: FrozenClock, folder: Path) -> list[specs.DeployResult]:
    with factory() as s:
        return specs.deploy(s, specs.read_sources(folder, FORMS), env.org, clock.now())


def test_safe_probe_diagram_deploys(driver: Driver, tmp_path: Path) -> None:
    """The template itself is fine, so each refusal below is due to its one change."""
    before = driver.count(ProcessDefinition)
    (result,) = deploy(driver.factory, driver.env, driver.clock, diagram(tmp_path))
    assert (result.process_key, result.version, result.created) == ("probe", 1, True)
    assert driver.count(ProcessDefinition) == before + 1


REFUSED = [
    pytest.param({"script": "import os\nos.system('id')"}, "middle", "import", id="script-import-os"),
    pytest.param({"script": "from os import path"}, "middle", "import", id="script-from-import"),
    pytest.param({"script": "x = ().__class__.__mro__"}, "middle", "not allowed", id="script-mro"),
    pytest.param({"script": "x = [c for c in ().__class__.__base__.__subclasses__()]"}, "middle", "__",
                 id="script-subclasses"),
    pytest.param({"script": "x = __builtins__"}, "middle", "__builtins__", id="script-builtins"),
    pytest.param({"script": "x = getattr(1, 'real')"}, "middle", "getattr", id="script-getattr"),
    pytest.param({"script": "exec('1')"}, "middle", "exec", id="script-exec"),
    pytest.param({"script": "f = lambda: 1"}, "middle", "Lambda", id="script-lambda"),
    pytest.param({"condition": "open('/etc/passwd').read() != ''"}, "choice", "open", id="condition-open"),
    pytest.param({"condition": "__import__('os').system('id') == 0"}, "choice", "__import__",
                 id="condition-dunder-import"),
    pytest.param({"condition": "().__class__ is None"}, "choice", "__class__", id="condition-dunder"),
    pytest.param({"form": "no_such_form"}, "work", "no_such_form", id="missing-form"),
    pytest.param({"lane": "謎の部署"}, "work", "謎の部署", id="unknown-lane"),
]


@pytest.mark.parametrize(("change", "element", "mentions"), REFUSED)
def test_malicious_or_broken_diagram_is_refused_naming_the_element(
        driver: Driver, tmp_path: Path, change: dict[str, str], element: str, mentions: str) -> None:
    before = [(d.process_key, d.version) for d in driver.definitions()]
    folder = diagram(tmp_path, **change)
    with pytest.raises(DeployError) as err:
        deploy(driver.factory, driver.env, driver.clock, folder)
    assert err.value.element == element
    assert err.value.status == 422
    assert f"element {element}" in str(err.value)
    assert mentions in str(err.value)
    assert err.value.file == "probe.bpmn"
    assert [(d.process_key, d.version) for d in driver.definitions()] == before


def test_refused_diagram_deploys_nothing_of_the_whole_folder(driver: Driver, tmp_path: Path) -> None:
    """A good diagram next to a bad one is not deployed either: all or nothing."""
    folder = diagram(tmp_path, "a_good.bpmn", key="good_one")
    diagram(tmp_path, "b_bad.bpmn", key="bad_one", script="import os")
    before = driver.count(ProcessDefinition)
    with pytest.raises(DeployError) as err:
        deploy(driver.factory, driver.env, driver.clock, folder)
    assert (err.value.element, err.value.file) == ("middle", "b_bad.bpmn")
    assert driver.count(ProcessDefinition) == before
    assert driver.definitions("good_one") == []


def test_not_well_formed_xml_is_refused_naming_the_file(driver: Driver, tmp_path: Path) -> None:
    folder = diagram(tmp_path)
    (folder / "broken.bpmn").write_text("<bpmn:definitions><unclosed></bpmn:definitions>", encoding="utf-8")
    before = driver.count(ProcessDefinition)
    with pytest.raises(DeployError) as err:
        deploy(driver.factory, driver.env, driver.clock, folder)
    assert err.value.file == "broken.bpmn"
    assert "broken.bpmn" in str(err.value)
    assert "well-formed" in str(err.value)
    assert driver.count(ProcessDefinition) == before


def test_xml_entities_are_not_expanded(driver: Driver, tmp_path: Path) -> None:
    """An external entity (XXE) cannot pull a server file into a diagram."""
    folder = diagram(tmp_path)
    text = (folder / "probe.bpmn").read_text(encoding="utf-8")
    text = text.replace('<?xml version="1.0" encoding="UTF-8"?>',
                        '<?xml version="1.0" encoding="UTF-8"?>\n'
                        '<!DOCTYPE d [<!ENTITY secret SYSTEM "file:///etc/passwd">]>')
    text = text.replace('name="作業"', 'name="&secret;"')
    (folder / "probe.bpmn").write_text(text, encoding="utf-8")
    before = driver.count(ProcessDefinition)
    try:
        deploy(driver.factory, driver.env, driver.clock, folder)
    except DeployError:
        assert driver.count(ProcessDefinition) == before
        return
    (row,) = driver.definitions("probe")
    assert "root:" not in str(row.bundle)
    defn = driver.env.specs.get(row)
    assert "root:" not in defn.steps["work"].name


@pytest.mark.parametrize("expression", [
    "().__class__",
    "().__class__.__mro__",
    "[].__class__.__base__.__subclasses__()",
    "__import__('os')",
    "__builtins__",
    "_getattr_",
    "open('/etc/passwd')",
    "getattr((), '__class__')",
    "import os",
])
def test_evaluate_refuses_unsafe_code_even_when_called_directly(expression: str) -> None:
    with pytest.raises(UnsafeCode):
        evaluate(expression, {})


@pytest.mark.parametrize("expression", ["'{0.__class__}'.format(x)", "str.format('{0.__class__}', x)"])
def test_evaluate_runtime_guard_blocks_what_the_static_check_cannot_see(expression: str) -> None:
    """No attribute starts with _ in the code, yet str.format would reach __class__: the
    guarded attribute access of RestrictedPython refuses it at run time."""
    with pytest.raises(NotImplementedError):
        evaluate(expression, {"x": 1})


def test_execute_refuses_unsafe_scripts_and_cannot_leak_private_names() -> None:
    with pytest.raises(UnsafeCode):
        execute("import os", {})
    with pytest.raises(UnsafeCode):
        execute("y = x.__dict__", {"x": object()})
    data: dict[str, object] = {"a": 2}
    execute("b = a * 3", data)
    assert data == {"a": 2, "b": 6}


def test_evaluate_still_works_on_task_data() -> None:
    assert evaluate('decision == "eligible"', {"decision": "eligible"}) is True
    assert evaluate("len(items) + max(items)", {"items": [1, 5]}) == 7
    assert evaluate("continue_support == True", {"continue_support": False}) is False


def test_conditional_event_expression_is_checked_at_deploy(driver: Driver, tmp_path: Path) -> None:
    folder = diagram(tmp_path)
    path = folder / "probe.bpmn"
    text = path.read_text(encoding="utf-8")
    start = text.index('<bpmn:scriptTask id="middle"')
    end = text.index("</bpmn:scriptTask>") + len("</bpmn:scriptTask>")
    event = ('<bpmn:intermediateCatchEvent id="middle" name="条件">'
             '<bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>'
             '<bpmn:conditionalEventDefinition id="cond_def">'
             '<bpmn:condition xsi:type="bpmn:tFormalExpression">open("/etc/passwd") is not None</bpmn:condition>'
             '</bpmn:conditionalEventDefinition></bpmn:intermediateCatchEvent>')
    path.write_text(text[:start] + event + text[end:].replace("total == 2", "True"), encoding="utf-8")
    before = driver.count(ProcessDefinition)
    with pytest.raises(DeployError) as err:
        deploy(driver.factory, driver.env, driver.clock, folder)
    assert err.value.element == "middle"
    assert "event expression refused" in str(err.value) and "open" in str(err.value)
    assert driver.count(ProcessDefinition) == before
