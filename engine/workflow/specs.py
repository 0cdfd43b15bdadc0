"""Process definitions: parse and check BPMN/DMN/forms, deploy them as versions, and
keep parsed specs in memory.

A deployment is checked whole before anything is written: a file that does not parse,
a user task (or a start event with a `formKey`: the data a case is opened with) whose form is missing, a lane no group holds, or a script that reaches
outside task data refuses the deployment with the element (or file) named. Each
process gets a new version only when its content (its BPMN, the DMN it calls, the forms
it uses) changed; the content hash makes a repeated deployment a no-op. A deployment over a
process whose latest version came from another diagram (another `<definitions id>`) is refused
unless asked for (`new_version`), so that unrelated diagrams sharing a process id (`Process_1`,
`main`) do not silently become versions of each other. Deployed forms are kept as form versions.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from threading import Lock
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import ThrowingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import EventBasedGateway
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.service_task import ServiceTask
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.specs.defaults import ScriptTask
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import DeployError, NotFound
from engine.models import FormVersion, ProcessDefinition
from engine.ops.db import begin_write
from engine.org import Organisation
from engine.security import audit
from engine.workflow import annotations, roles
from engine.workflow.expressions import UnsafeCode, check_code
from engine.workflow.modelers import CamundaForm, camunda_forms

DMN_NS = {
    "dmn13": "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "dmn12": "http://www.omg.org/spec/DMN/20180521/MODEL/",
}
# What a user task's `reportAs` property may say (see StepInfo.report_as).
REPORT_AS = ("monitoring", "role_report")
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)


@dataclass(frozen=True)
class StepInfo:
    """What the engine needs to know about one user task of a process."""

    step: str
    name: str
    lane: str | None
    form_key: str | None
    due_in: str | None
    # `sameAssigneeAs`: the step whose latest completer in the case gets this task
    same_assignee_as: str | None = None
    # the element's documentation: what a confirmation step (no form) asks the person to do
    documentation: str | None = None
    # `reportAs`: what the supervisors' reports treat the step as; "monitoring" marks the
    # record a timer asks for (the stuck report's `monitoring_overdue`), "role_report" a role
    # holder's report for it, listed beside the monitoring task
    report_as: str | None = None
    # `groupFrom`: an expression over the task's data naming the group whose queue gets it
    # (each instance of a multi-instance task its own: `role_holder["group"]`), instead of the
    # lane's group; the lane's group when it names no known group
    group_from: str | None = None


@dataclass
class LoadedDefinition:
    """A parsed process version, shared by every case that runs it."""

    definition_id: int
    process_key: str
    version: int
    spec: Any
    subprocess_specs: dict[str, Any]
    forms: dict[str, dict[str, Any]]
    steps: dict[str, StepInfo]
    # message name -> process key started when the message is thrown (hand-over)
    message_routes: dict[str, str] = field(default_factory=dict)
    bpmn_xml: str = ""
    # schema of the data a case is opened with (the start event's formKey), if it has one
    start_form: dict[str, Any] | None = None
    # names of the messages whose message start event starts a case of this process
    message_starts: frozenset[str] = frozenset()


def parse_iso_duration(text: str, start: datetime) -> timedelta:
    """The timedelta an ISO 8601 duration spans from `start`, as Spiff's timers compute it."""
    if not isinstance(text, str) or not text.upper().startswith("P"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration (e.g. P14D)")
    try:
        parsed = TimerEventDefinition.parse_iso_duration(text.upper())
        if not parsed:
            raise ValueError
        return TimerEventDefinition.get_timedelta_from_start(parsed, start)
    except Exception:
        raise ValueError(f"{text!r} is not an ISO 8601 duration (e.g. P14D)") from None


def is_duration(text: Any) -> bool:
    from engine.clock import utcnow

    try:
        parse_iso_duration(text, utcnow())
        return True
    except ValueError:
        return False


def _parse_xml(name: str, content: bytes | str) -> etree._Element:
    raw = content.encode("utf-8") if isinstance(content, str) else content
    try:
        return etree.fromstring(raw, _XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise DeployError(f"not well-formed XML: {exc}", file=name) from None


def _properties(task_spec: Any) -> dict[str, str]:
    return dict(task_spec.extensions.get("properties", {}) or {})


def _check(source: str | None, mode: str, element: str, file: str | None, what: str) -> None:
    if not source or not source.strip():
        return
    try:
        check_code(source.strip() if mode == "eval" else source, mode)
    except UnsafeCode as exc:
        raise DeployError(f"{what} refused: {exc}", element=element, file=file) from None


def _check_dmn(name: str, root: etree._Element) -> list[str]:
    """Check every expression of a DMN file; return the decision ids it defines."""
    ns = root.nsmap.get(None) or next(iter(DMN_NS.values()))
    q = {"d": ns}
    for node in root.iterfind(".//d:inputExpression", q):
        text = node.findtext("d:text", namespaces=q)
        _check(text, "eval", node.get("id") or "inputExpression", name, "DMN input expression")
    for node in root.iterfind(".//d:inputEntry", q):
        text = (node.findtext("d:text", namespaces=q) or "").strip()
        if text in ("", "-"):
            continue
        candidate = text.replace("?", "dmninputexpr")
        try:
            check_code(candidate, "eval")
        except UnsafeCode:
            _check(f"dmninputexpr {candidate}", "eval", node.get("id") or "inputEntry", name, "DMN input entry")
    for node in root.iterfind(".//d:outputEntry", q):
        _check(node.findtext("d:text", namespaces=q), "eval", node.get("id") or "outputEntry", name,
               "DMN output entry")
    return [d.get("id") for d in root.iterfind("d:decision", q)]


def _all_specs(spec: Any, subprocess_specs: dict[str, Any]) -> list[tuple[str, Any]]:
    out = [(spec.name, ts) for ts in spec.task_specs.values()]
    for sub in subprocess_specs.values():
        out.extend((sub.name, ts) for ts in sub.task_specs.values())
    return out


_BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
SERVICE_TASK = ("サービスタスクはここでは使えません。スクリプトタスクかユーザータスクにしてください / "
                "service tasks are not supported here: use a script task or a user task")


def _refuse_unsupported(root: etree._Element, file: str) -> None:
    """Refuse what Spiff's parser would reject with its own, less helpful words (a service
    task \"must have an operator\")."""
    for node in root.iter(f"{_BPMN}serviceTask"):
        raise DeployError(SERVICE_TASK, element=node.get("id"), file=file)


NOT_INTERRUPTING = ("このイベントサブプロセスは割り込みません（元の作業は続きます） / this event subprocess does not "
                    "interrupt here (the engine runs every event subprocess alongside the work it started "
                    "beside): set isInterrupting=\"false\" to say so, or use an interrupting boundary event")


def _warnings(root: etree._Element) -> list[dict[str, str]]:
    """What runs, but not as a reader of the diagram may expect."""
    out = []
    for sub in root.iter(f"{_BPMN}subProcess"):
        if sub.get("triggeredByEvent") != "true":
            continue
        for start in sub.findall(f"{_BPMN}startEvent"):
            if start.get("isInterrupting", "true") != "false":
                out.append({"element": start.get("id") or "", "message": NOT_INTERRUPTING})
    return out


class _Parsed:
    def __init__(self, bpmn: dict[str, str], dmn: dict[str, str], strict: bool = True) -> None:
        self.bpmn = bpmn
        self.dmn = dmn
        self.parser = SpiffBpmnParser(validator=VALIDATOR)
        self.process_files: dict[str, str] = {}
        self.decision_files: dict[str, str] = {}
        # element id -> what Camunda Modeler wrote on it (Spiff's parser reads none of it)
        self.camunda: dict[str, CamundaForm] = {}
        self.warnings: list[dict[str, str]] = []
        for name, xml in dmn.items():
            root = _parse_xml(name, xml)
            for decision_id in _check_dmn(name, root):
                self.decision_files[decision_id] = name
            try:
                self.parser.add_dmn_xml(root, filename=name)
            except ValidationException as exc:
                raise DeployError(str(exc).splitlines()[0], element=exc.id or None, file=name) from None
        for name, xml in bpmn.items():
            root = _parse_xml(name, xml)
            if strict:
                _refuse_unsupported(root, name)
            self.warnings.extend(_warnings(root))
            self.camunda.update(camunda_forms(root))
            try:
                self.parser.add_bpmn_xml(root, filename=name)
            except ValidationException as exc:
                raise DeployError(str(exc).splitlines()[0], element=exc.id or None, file=name) from None
            for proc in root.iter("{http://www.omg.org/spec/BPMN/20100524/MODEL}process"):
                if proc.get("isExecutable", "false").lower() == "true":
                    self.process_files[proc.get("id")] = name

    def get(self, process_key: str) -> tuple[Any, dict[str, Any]]:
        file = self.process_files.get(process_key)
        try:
            spec = self.parser.get_spec(process_key)
            subs = self.parser.get_subprocess_specs(process_key)
        except ValidationException as exc:
            raise DeployError(str(exc).splitlines()[0], element=exc.id or None, file=exc.file_name or file) from None
        except Exception as exc:  # Spiff raises plain exceptions for some structural faults
            raise DeployError(f"cannot build process: {exc}", element=process_key, file=file) from None
        return spec, subs


# Task types Spiff parses but this engine cannot run: what to do instead.
UNSUPPORTED = ((ServiceTask, SERVICE_TASK),)
CONFIRMATION = ("フォームがないため確認ステップになります（説明を表示し「確認」で完了） / no form: this runs as a "
                "confirmation step (its documentation is shown, and 確認 completes it)")


class Faults:
    """Where `_inspect` puts what it finds: the first refusal is raised at once, unless
    collecting (`validate`), which wants them all, and the warnings too."""

    def __init__(self, collect: bool = False) -> None:
        self.collect = collect
        self.errors: list[DeployError] = []
        self.warnings: list[dict[str, str]] = []

    def refuse(self, error: DeployError) -> None:
        if not self.collect:
            raise error
        self.errors.append(error)

    def check(self, source: str | None, mode: str, element: str, file: str | None, what: str) -> None:
        try:
            _check(source, mode, element, file, what)
        except DeployError as exc:
            self.refuse(exc)

    def warn(self, element: str, message: str) -> None:
        self.warnings.append({"element": element, "message": message})


def _form_of(ts: Any, element: str, props: dict[str, str], camunda: dict[str, CamundaForm],
             forms: dict[str, dict[str, Any]], file: str | None, faults: Faults) -> str | None:
    """The form key of a human step, from (in order) the engine's `formKey` property, spiff's
    `formJsonSchemaFilename`, or Camunda's `camunda:formKey` / `camunda:formData`; None (a
    confirmation step) when it names none. A Camunda task's embedded fields become a form of
    the bundle, `camunda:<element>`."""
    if props.get("formKey"):
        key = props["formKey"]
        if key not in forms:
            faults.refuse(DeployError(
                f"フォーム {key!r} がありません / user task names form {key!r}, which does not exist: add "
                f"forms/{key}.json or name an existing form", element=element, file=file))
            return None
        return key
    filename = props.get("formJsonSchemaFilename")
    if filename:
        stem = filename.rsplit("/", 1)[-1].removesuffix(".json")
        for key in (stem, stem.removesuffix("-schema"), stem.removesuffix(".schema")):
            if key in forms:
                return key
        faults.refuse(DeployError(
            f"フォーム {filename!r} がありません / formJsonSchemaFilename names {filename!r}, which is not a form "
            f"here: add forms/{stem}.json or name an existing form", element=element, file=file))
        return None
    found = camunda.get(element)
    if found is not None:
        if found.form_key and found.form_key in forms:
            return found.form_key
        if found.schema is not None:
            key = f"camunda:{element}"
            if len(key) > 100:  # the task row's form_key column
                key = f"camunda:{hashlib.sha256(element.encode()).hexdigest()[:32]}"
            forms[key] = found.schema
            return key
        if found.form_key:
            faults.refuse(DeployError(
                f"フォーム {found.form_key!r} がありません / camunda:formKey names {found.form_key!r}, which is not "
                f"a form here: add forms/<name>.json and name it, or remove formKey for a confirmation step",
                element=element, file=file))
    return None


def _inspect(process_key: str, spec: Any, subs: dict[str, Any], forms: dict[str, dict[str, Any]],
             org: Organisation, file: str | None, camunda: dict[str, CamundaForm] | None = None,
             faults: Faults | None = None) -> tuple[dict[str, StepInfo], dict[str, str], set[str]]:
    """Check every task spec of a process; return its human steps, message routes, decisions.
    `forms` gains the forms a diagram embeds (Camunda formData)."""
    faults = faults or Faults()
    camunda = camunda or {}
    steps: dict[str, StepInfo] = {}
    routes: dict[str, str] = {}
    decisions: set[str] = set()
    for _, ts in _all_specs(spec, subs):
        element = getattr(ts, "bpmn_id", None) or ts.name
        props = _properties(ts) if hasattr(ts, "extensions") else {}
        refusal = next((text for kind, text in UNSUPPORTED if isinstance(ts, kind)), None)
        if refusal is not None:
            faults.refuse(DeployError(refusal, element=element, file=file))
            continue
        for ext in ("preScript", "postScript"):
            faults.check(getattr(ts, ext.lower(), None), "exec", element, file, ext)
        if isinstance(ts, ScriptTask):
            faults.check(ts.script, "exec", element, file, "script")
        for condition, _target in getattr(ts, "cond_task_specs", []) or []:
            # Spiff wraps each gateway condition in a _BpmnCondition whose args[0] is the text.
            args = getattr(condition, "args", None) or (None,)
            text = condition if isinstance(condition, str) else args[0]
            if isinstance(text, str):
                faults.check(text, "eval", element, file, "condition")
        event_definition = getattr(ts, "event_definition", None)
        # An event-based gateway holds its events' definitions as one Multiple: that is fine.
        if isinstance(event_definition, MultipleEventDefinition) and not isinstance(ts, EventBasedGateway):
            faults.refuse(DeployError(
                "複数の定義を持つイベントはここでは使えません / events with several event definitions are not "
                "supported here: use one event for each message, timer or signal (an event-based gateway "
                "waits for whichever comes first)", element=element, file=file))
            continue
        if isinstance(event_definition, TimerEventDefinition):
            faults.check(event_definition.expression, "eval", element, file, "timer expression")
        elif isinstance(getattr(event_definition, "expression", None), str):
            faults.check(event_definition.expression, "eval", element, file, "event expression")
        if getattr(ts, "decision_table", None) is not None or "calledDecisionId" in getattr(ts, "extensions", {}):
            decisions.add(ts.extensions.get("calledDecisionId", ""))
        if isinstance(ts, ThrowingEvent) and isinstance(event_definition, MessageEventDefinition):
            target = props.get("startsProcess")
            if target:
                routes[event_definition.name] = target
        if isinstance(event_definition, MessageEventDefinition | SignalEventDefinition) and not event_definition.name:
            kind = "message" if isinstance(event_definition, MessageEventDefinition) else "signal"
            faults.refuse(DeployError(
                f"{'メッセージ' if kind == 'message' else 'シグナル'}の名前がありません / this {kind} event names no "
                f"{kind}: give it a {kind}Ref to a named bpmn:{kind}", element=element, file=file))
        if isinstance(event_definition, MessageEventDefinition):
            for prop in event_definition.correlation_properties:
                faults.check(prop.retrieval_expression, "eval", element, file, f"correlation property {prop.name}")
        # A human step: a user or manual task, or a plain `bpmn:task` (all that Spiff leaves
        # for a person to complete). Without a form it is a confirmation step.
        if getattr(ts, "manual", False):
            if element in steps:
                continue  # a multi-instance's inner task has the same element id
            form_key = _form_of(ts, element, props, camunda, forms, file, faults)
            if form_key is None:
                faults.warn(element, CONFIRMATION)
            due_in = props.get("dueIn")
            if due_in and not is_duration(due_in):
                faults.refuse(DeployError(f"dueIn {due_in!r} は ISO 8601 の期間ではありません / dueIn {due_in!r} is "
                                          "not an ISO 8601 duration (e.g. P14D)", element=element, file=file))
            lane = getattr(ts, "lane", None)
            if lane is not None and lane not in org.lanes:
                faults.refuse(DeployError(
                    f"レーン {lane!r} を受け持つ機関がありません / user task is in lane {lane!r}, which no group holds: "
                    f"name the lane after one of {', '.join(org.lanes)}, or add it to config/organisation.yaml",
                    element=element, file=file))
            if lane is None:
                faults.warn(element, "レーンがないため紹介元の機関の作業になります / in no lane: the referring group "
                                     "works on it")
            report_as = props.get("reportAs") or None
            if report_as is not None and report_as not in REPORT_AS:
                faults.refuse(DeployError(f"reportAs {report_as!r} は {', '.join(REPORT_AS)} のいずれかです / reportAs "
                                          f"{report_as!r} is not one of {', '.join(REPORT_AS)}", element=element,
                                          file=file))
                report_as = None
            group_from = (props.get("groupFrom") or "").strip() or None
            faults.check(group_from, "eval", element, file, "groupFrom")
            steps[element] = StepInfo(element, ts.bpmn_name or element, lane, form_key, due_in,
                                      props.get("sameAssigneeAs") or None,
                                      (getattr(ts, "documentation", None) or "").strip() or None, report_as,
                                      group_from)
    for info in steps.values():
        if info.same_assignee_as and info.same_assignee_as not in steps:
            faults.refuse(DeployError(f"sameAssigneeAs names {info.same_assignee_as!r}, which is not a user task of "
                                      f"this process", element=info.step, file=file))
    return steps, routes, decisions


def _start_form_key(spec: Any, forms: dict[str, dict[str, Any]], file: str | None) -> str | None:
    """The form the process's start event names for its start data (e.g. a referral), if any."""
    for ts in spec.task_specs.values():
        if not isinstance(ts, StartEvent):
            continue
        form_key = _properties(ts).get("formKey")
        if form_key and form_key not in forms:
            raise DeployError(f"start event names form {form_key!r}, which does not exist",
                              element=ts.bpmn_id or ts.name, file=file)
        if form_key:
            return form_key
    return None


@dataclass
class Sources:
    bpmn: dict[str, str]
    dmn: dict[str, str]
    forms: dict[str, dict[str, Any]]


def read_sources(path: Path, forms_dir: Path) -> Sources:
    """Files to deploy from a folder (every .bpmn and .dmn) or one .bpmn file (with the
    .dmn files beside it). Forms come from `<folder>/forms` when present, else `forms_dir`."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"{path} does not exist")
    folder = path if path.is_dir() else path.parent
    bpmn_files = sorted(folder.glob("*.bpmn")) if path.is_dir() else [path]
    if not bpmn_files:
        raise DeployError("no .bpmn files found", file=str(path))
    bpmn = {p.name: p.read_text(encoding="utf-8") for p in bpmn_files}
    dmn = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.dmn"))}
    local_forms = folder / "forms"
    return Sources(bpmn, dmn, read_forms(local_forms if local_forms.is_dir() else forms_dir))


def read_forms(forms_dir: Path) -> dict[str, dict[str, Any]]:
    forms: dict[str, dict[str, Any]] = {}
    for p in sorted(Path(forms_dir).glob("*.json")):
        try:
            schema = json.loads(p.read_text(encoding="utf-8"))
            Draft202012Validator.check_schema(schema)
        except json.JSONDecodeError as exc:
            raise DeployError(f"form is not valid JSON: {exc}", file=p.name) from None
        except SchemaError as exc:
            raise DeployError(f"form is not a valid JSON Schema: {exc.message}", file=p.name) from None
        problems = [*roles.role_problems(schema), *(f"field {k}: {m}" for k, m in annotations.problems(schema).items())
                    ] if isinstance(schema, dict) else []
        if problems:
            raise DeployError(f"フォームの x-tsunagu が不正です / {problems[0]}", file=p.name)
        forms[p.stem] = schema
    return forms


@dataclass
class Checked:
    process_key: str
    name: str
    bundle: dict[str, Any]
    content_hash: str


def check_sources(sources: Sources, org: Organisation) -> list[Checked]:
    """Parse and check everything; raise DeployError at the first fault."""
    return _checked(sources, org, Faults())


def validate(sources: Sources, org: Organisation) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Every refusal and every warning a deployment of `sources` would meet, each
    `{"element", "message"}` (`element` is the element id, else the file at fault); no
    errors means `deploy` accepts it. Nothing is written."""
    faults = Faults(collect=True)
    try:
        _checked(sources, org, faults)
    except DeployError as exc:  # a fault that stops the check (unparseable file, no process)
        faults.errors.append(exc)
    errors = [{"element": e.element or e.file or "", "message": e.detail} for e in faults.errors]
    return errors, faults.warnings


def _checked(sources: Sources, org: Organisation, faults: Faults) -> list[Checked]:
    parsed = _Parsed(sources.bpmn, sources.dmn)
    if not parsed.process_files:
        raise DeployError("実行可能なプロセスがありません / no executable process (isExecutable=\"true\") found",
                          file=", ".join(sources.bpmn))
    faults.warnings.extend(parsed.warnings)
    out = []
    for key, file in sorted(parsed.process_files.items()):
        spec, subs = parsed.get(key)
        forms = dict(sources.forms)
        steps, _routes, decisions = _inspect(key, spec, subs, forms, org, file, parsed.camunda, faults)
        dmn_files = sorted({parsed.decision_files[d] for d in decisions if d in parsed.decision_files})
        missing = [d for d in decisions if d and d not in parsed.decision_files]
        if missing:
            faults.refuse(DeployError(f"calls decision {missing[0]!r}, which no DMN file defines", element=key,
                                      file=file))
        start_form = _start_form_key(spec, forms, file)
        used_forms = sorted({s.form_key for s in steps.values() if s.form_key} | ({start_form} - {None}))
        bundle = {
            "bpmn": {file: sources.bpmn[file]},
            "dmn": {name: sources.dmn[name] for name in dmn_files},
            "forms": {k: forms[k] for k in used_forms},
        }
        out.append(Checked(key, spec.description or key, bundle, content_hash(bundle)))
    return out


@dataclass
class DeployResult:
    process_key: str
    version: int
    definition_id: int
    created: bool


def definitions_id(xml: str) -> str | None:
    """The `id` of a BPMN file's `<definitions>`: what tells one diagram from another."""
    try:
        return _parse_xml("", xml).get("id") or None
    except DeployError:
        return None


def same_diagram(previous: ProcessDefinition, item: Checked) -> bool:
    """Whether `item` continues the diagram `previous` was deployed from: their `<definitions>`
    ids match, or, when neither has one, they come from a file of the same name."""
    (old_file, old_xml), = previous.bundle["bpmn"].items()
    (new_file, new_xml), = item.bundle["bpmn"].items()
    old_id, new_id = definitions_id(old_xml), definitions_id(new_xml)
    if old_id is None and new_id is None:
        return old_file == new_file
    return old_id == new_id


def store_forms(session: Session, forms: dict[str, dict[str, Any]], now: datetime, actor: str | None) -> list[str]:
    """Keep each form whose content differs from its newest stored version as a new version
    (in the caller's transaction). Returns the keys stored."""
    stored = []
    for key, schema in sorted(forms.items()):
        digest = content_hash(schema)
        latest = session.scalar(select(FormVersion).where(FormVersion.form_key == key)
                                .order_by(FormVersion.version.desc()).limit(1))
        if latest is not None and latest.content_hash == digest:
            continue
        session.add(FormVersion(form_key=key, version=(latest.version if latest else 0) + 1, schema=schema,
                                content_hash=digest, created_at=now, created_by=actor))
        stored.append(key)
    session.flush()
    return stored


def content_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def deploy(session: Session, sources: Sources, org: Organisation, now: datetime,
           actor: str | None = None, comment: str | None = None, new_version: bool = False) -> list[DeployResult]:
    """Check and store new versions of every process in `sources`, and its forms. Commits.

    A process already deployed from another diagram (see `same_diagram`) is refused unless
    `new_version`: unrelated diagrams that share a process id (`Process_1`, `main`) must not
    silently become versions of each other."""
    checked = check_sources(sources, org)
    begin_write(session)
    try:
        results = _store(session, checked, now, actor, comment, new_version)
        store_forms(session, sources.forms, now, actor)
    except BaseException:
        session.rollback()
        raise
    if any(r.created for r in results):
        audit.record(session, None, audit.Action.DEFINITION_DEPLOY, now, actor_name=actor,
                     detail={"deployed": [f"{r.process_key} v{r.version}" for r in results if r.created],
                             **({"comment": comment} if comment else {})})
    session.commit()
    return results


def _store(session: Session, checked: list[Checked], now: datetime, actor: str | None, comment: str | None,
           new_version: bool) -> list[DeployResult]:
    results = []
    for item in checked:
        existing = session.scalar(select(ProcessDefinition).where(
            ProcessDefinition.process_key == item.process_key, ProcessDefinition.content_hash == item.content_hash))
        if existing is not None:
            results.append(DeployResult(item.process_key, existing.version, existing.id, False))
            continue
        previous = latest_definition(session, item.process_key)
        if previous is not None and not new_version and not same_diagram(previous, item):
            raise DeployError(
                f"プロセス {item.process_key!r} の v{previous.version} は別の図（definitions id "
                f"{definitions_id(next(iter(previous.bundle['bpmn'].values())))!r}）から登録されています。"
                f"その次の版にするなら --new-version を付けてください / process {item.process_key!r} v"
                f"{previous.version} was deployed from another diagram; give --new-version to make this its "
                f"next version, or give the process another id", element=item.process_key)
        row = ProcessDefinition(process_key=item.process_key, version=(previous.version if previous else 0) + 1,
                                name=item.name, content_hash=item.content_hash, bundle=item.bundle,
                                deployed_at=now, deployed_by=actor, comment=comment or None)
        session.add(row)
        session.flush()
        results.append(DeployResult(item.process_key, row.version, row.id, True))
    return results


def latest_definition(session: Session, process_key: str) -> ProcessDefinition | None:
    return session.scalar(select(ProcessDefinition).where(ProcessDefinition.process_key == process_key)
                          .order_by(ProcessDefinition.version.desc()).limit(1))


class SpecCache:
    """Parsed specs by definition id. Specs are read-only at run time, so one parsed
    copy serves every case (and every thread) on that version."""

    def __init__(self, org: Organisation, size: int = 64) -> None:
        self.org = org
        self.size = size
        self._items: OrderedDict[int, LoadedDefinition] = OrderedDict()
        self._lock = Lock()

    def for_case(self, case: Any) -> LoadedDefinition:
        """The parsed definition a case runs on, touching the database only on a miss."""
        with self._lock:
            hit = self._items.get(case.definition_id)
            if hit is not None:
                self._items.move_to_end(case.definition_id)
                return hit
        return self.get(case.definition)

    def get(self, definition: ProcessDefinition) -> LoadedDefinition:
        with self._lock:
            hit = self._items.get(definition.id)
            if hit is not None:
                self._items.move_to_end(definition.id)
                return hit
        loaded = self._load(definition)
        with self._lock:
            self._items[definition.id] = loaded
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return loaded

    def _load(self, d: ProcessDefinition) -> LoadedDefinition:
        return load_bundle(d.process_key, d.bundle, self.org, d.id, d.version)


def load_bundle(process_key: str, bundle: dict[str, Any], org: Organisation, definition_id: int = 0,
                version: int = 0) -> LoadedDefinition:
    """Parse a bundle ({"bpmn", "dmn", "forms"}, see `check_sources`) into a runnable definition.
    Stored versions load with their id; a sandbox run (engine.workflow.sandbox) with none. A stored
    version loads even if today's checks would refuse it (deployed before they existed): its
    cases run, or fail with the element named, as they did then."""
    parsed = _Parsed(bundle["bpmn"], bundle["dmn"], strict=False)
    spec, subs = parsed.get(process_key)
    steps, routes, _ = _inspect(process_key, spec, subs, dict(bundle["forms"]), org, None, parsed.camunda,
                                Faults(collect=True))
    start_form = _start_form_key(spec, bundle["forms"], None)
    return LoadedDefinition(definition_id, process_key, version, spec, subs, bundle["forms"], steps, routes,
                            next(iter(bundle["bpmn"].values())),
                            bundle["forms"][start_form] if start_form else None, message_start_names(spec))


def message_start_names(spec: Any) -> frozenset[str]:
    """Messages that start the process: its top level's message start events."""
    return frozenset(ts.event_definition.name for ts in spec.task_specs.values()
                     if isinstance(ts, StartEvent) and isinstance(ts.event_definition, MessageEventDefinition))


def parse_xml(name: str, content: bytes | str) -> etree._Element:
    """XML parsed without entities or network access; DeployError naming `name` if malformed."""
    return _parse_xml(name, content)
