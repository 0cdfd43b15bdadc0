"""SpiffWorkflow for one case: create, load, run and save its workflow.

What is stored per case is the workflow's live state only:
- the spec is left out (it lives once per definition and is parsed once per process,
  see `engine.workflow.specs.SpecCache`), and
- finished history is pruned: tasks above the lowest common ancestor of the unfinished
  tasks are dropped from the tree, since nothing ahead of the token reads them. What
  happened is kept on our own rows (history, task projection), written once.
So loading and saving a case costs the same after two years of fortnightly monitoring
as on its first day.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.serializer.helpers.encoder import create_encoder
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState as SpiffState

from engine.clock import spiff_time
from engine.settings import Limits
from engine.workflow.expressions import contained, evaluate, limit_exceeded, make_script_engine
from engine.workflow.specs import LoadedDefinition


class StateConverter(BpmnWorkflowConverter):
    """A workflow as we store it: Spiff's own dict less the spec and subprocess specs, which
    Spiff would otherwise convert in full at every save (most of a save's cost) for us to drop.

    The top workflow's tasks are written by `_task_dicts`, the same dicts Spiff's TaskConverter
    writes, in half its time; values inside them that JSON lacks (a date in task data) are
    converted on the way out by Spiff's own encoder (`_ENCODER`), as `serialize_json` does."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        registry = self.registry
        return {
            "data": registry.convert(registry.clean(workflow.data)),
            "correlations": workflow.correlations,
            "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
            "success": workflow.success,
            "completed": workflow.completed,
            "tasks": _task_dicts(workflow.tasks, registry),
            "root": str(workflow.task_tree.id),
            "subprocesses": self.mapping_to_dict(workflow.subprocesses),
            "bpmn_events": registry.convert(workflow.bpmn_events),
        }


def _task_dicts(tasks: dict[Any, Task], registry: Any) -> dict[str, Any]:
    """{task id: its dict} as Spiff's TaskConverter (3.2) makes them: the root's data whole,
    every other task's as a delta over its parent's. Each id is formatted once, not at every
    mention (a task's own, its parent's, its children's)."""
    ids = {tid: str(tid) for tid in tasks}
    typename = registry.typenames.get(Task)
    out: dict[str, Any] = {}
    for tid, task in tasks.items():
        if type(task) is not Task:
            out[ids[tid]] = registry.convert(task)  # a class of its own: its own converter
            continue
        parent = tasks.get(task._parent) if task._parent is not None else None
        if parent is None:
            data, delta = task.data, {}
        else:
            before, after = parent.data, task.data
            data = {}
            delta = {"updates": {k: v for k, v in after.items() if k not in before or v != before[k]},
                     "deletions": [k for k in before if k not in after]}
        out[ids[tid]] = {
            "id": ids[tid],
            "parent": ids[task._parent] if parent is not None else None,
            "children": [ids.get(child) or str(child) for child in task._children],
            "last_state_change": task.last_state_change,
            "state": task.state,
            "task_spec": task.task_spec.name,
            "triggered": task.triggered,
            "internal_data": registry.convert(task.internal_data),
            "data": data,
            "delta": delta,
            "typename": typename,
        }
    return out


SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure({**SPIFF_CONFIG, BpmnWorkflow: StateConverter}))
_ENCODER = create_encoder(SERIALIZER.registry)
# Our own envelope version, bumped when what we strip or add around Spiff's dict changes.
STATE_FORMAT = 1
SERIALIZER_VERSION = f"{SERIALIZER.VERSION}+t{STATE_FORMAT}"
_SCRIPT_ENGINE = make_script_engine()


class StateError(Exception):
    """Stored state that cannot be loaded (unknown serializer version, corrupt JSON)."""


def new_workflow(defn: LoadedDefinition) -> BpmnWorkflow:
    return BpmnWorkflow(defn.spec, defn.subprocess_specs, script_engine=_SCRIPT_ENGINE)


def dump(wf: BpmnWorkflow) -> str:
    prune(wf)
    dct = SERIALIZER.to_dict(wf)
    return json.dumps(dct, cls=_ENCODER, separators=(",", ":"), ensure_ascii=False)


def load(defn: LoadedDefinition, state: str, version: str) -> BpmnWorkflow:
    try:
        dct = json.loads(state)
    except json.JSONDecodeError as exc:
        raise StateError(f"stored workflow state is not JSON: {exc}") from None
    spiff_version, _, ours = version.partition("+t")
    if ours and int(ours) > STATE_FORMAT:
        raise StateError(f"state format {version} is newer than this program ({SERIALIZER_VERSION})")
    if spiff_version != SERIALIZER.VERSION:
        # Spiff's migrations may rewrite the spec too, so give them one to work on.
        dct["spec"] = SERIALIZER.to_dict(defn.spec)
        dct["subprocess_specs"] = {k: SERIALIZER.to_dict(v) for k, v in defn.subprocess_specs.items()}
        dct[SERIALIZER.VERSION_KEY] = spiff_version
        SERIALIZER.migrate(dct)
        dct.pop("spec")
        dct.pop("subprocess_specs")
    # The registry passes objects it does not know through unchanged, so the shared,
    # already parsed spec is used as is instead of being rebuilt from a dict.
    dct["spec"] = defn.spec
    dct["subprocess_specs"] = dict(defn.subprocess_specs)
    wf = SERIALIZER.from_dict(dct)
    wf.script_engine = _SCRIPT_ENGINE
    return wf


def prune(wf: BpmnWorkflow) -> int:
    """Drop finished tasks above the unfinished part of the tree. Returns how many."""
    if wf.subprocesses:
        return 0  # call activities and subprocesses keep their parents; leave them whole
    tasks = wf.tasks
    unfinished = {tid for tid, t in tasks.items() if not t.has_state(SpiffState.FINISHED_MASK)}
    if not unfinished:
        return 0
    root = wf.task_tree
    # Path from the root to each unfinished task; their common prefix ends at the LCA. A task
    # under another unfinished one (what Spiff predicts after a waiting task) cannot move the
    # LCA, which is above its parent already: only the tops of the unfinished subtrees are walked.
    common: list[Any] | None = None
    for top in (tid for tid in unfinished if tasks[tid]._parent not in unfinished):
        path = []
        node = top
        while node is not None:
            path.append(node)
            parent = tasks.get(node)
            node = parent._parent if parent is not None else None
        path.reverse()
        if common is None:
            common = path
        else:
            n = 0
            while n < len(common) and n < len(path) and common[n] == path[n]:
                n += 1
            common = common[:n]
    assert common
    cut_id = common[-1]
    if len(common) <= 2 or cut_id == root.id:
        return 0
    cut = tasks[cut_id]
    keep = {root.id}
    stack = [cut_id]
    while stack:
        node = stack.pop()
        keep.add(node)
        stack.extend(child for child in tasks[node]._children if child in tasks)
    removed = [tid for tid in wf.tasks if tid not in keep]
    if not removed:
        return 0
    # The cut task keeps its data; make it the root's only child.
    cut._parent = root.id
    root._children = [cut.id]
    # The root holds the start data; a waiting task under it (a timer) takes its parent's data
    # again when it runs, which would bring back start values later steps had changed (the
    # start summary over the one written at intake). The cut task has all it needs already.
    root.data = {}
    for tid in removed:
        del wf.tasks[tid]
    if wf.last_task is not None and wf.last_task.id not in keep:
        wf.last_task = cut
    return len(removed)


# Each of these is one engine step: the diagram code it runs shares one budget of `limits`
# (`engine.workflow.expressions`), and a runaway raises a SpiffWorkflowException naming the element.


@contextmanager
def failures(wf: BpmnWorkflow) -> Iterator[None]:
    """Whatever a diagram makes Spiff raise comes out as a SpiffWorkflowException naming the
    element when it can: some faults (a multi-instance over a collection the data lacks, a
    correlation expression over a missing name) leave Spiff as plain Python errors, which
    callers would otherwise meet as a server error."""
    try:
        yield
    except SpiffWorkflowException:
        raise
    except Exception as exc:
        if limit_exceeded(exc) is not None:
            raise
        task = next((t for t in wf.get_tasks(state=SpiffState.STARTED | SpiffState.ERROR)), None) \
            or next(iter(wf.get_tasks(state=SpiffState.READY)), None)
        detail = f"{type(exc).__name__}: {exc}"
        if task is not None:
            raise WorkflowTaskException(detail, task=task, exception=exc) from exc
        raise WorkflowException(detail) from exc


def run_engine(wf: BpmnWorkflow, now: datetime, limits: Limits | None = None) -> None:
    with spiff_time(now), contained(limits), failures(wf):
        wf.refresh_timers()
        wf.do_engine_steps()


def start(wf: BpmnWorkflow, data: dict[str, Any], now: datetime, limits: Limits | None = None,
          message: str | None = None, correlation: dict[str, Any] | None = None) -> None:
    """Run a new workflow up to its first wait, with `data` as its start data.

    A process whose start event waits for a message (e.g. outreach's `outreach_referral`)
    receives that message, carrying `data`: opening such a case is receiving its message.
    With `message`, it is the message start event of that name (an incoming message), which
    also receives the message's correlation."""
    with spiff_time(now), contained(limits), failures(wf):
        first = wf.get_tasks(state=SpiffState.READY)
        if first:
            first[0].set_data(**data)
        wf.do_engine_steps()
        waiting = message_start_events(wf)
        if message is not None:
            waiting = [t for t in waiting if _message_name(t) == message]
            if not waiting:
                raise ValueError(f"the process has no message start event {message!r}")
        if waiting:
            _catch(waiting[0], data, correlation or {})
            wf.do_engine_steps()


def message_start_events(wf: BpmnWorkflow) -> list[Any]:
    """The top-level start events waiting for a message (none once the case has started)."""
    return [t for t in wf.get_tasks(state=SpiffState.WAITING)
            if t.workflow is wf and isinstance(t.task_spec, StartEvent)
            and isinstance(getattr(t.task_spec, "event_definition", None), MessageEventDefinition)]


class MessageNotCaught(Exception):
    """The task a message was routed to is no longer waiting for it."""


TRIGGER = "trigger:"


class _Trigger:
    """A start event of an event subprocess, waiting to be triggered. Spiff keeps these on the
    process spec, not as waiting tasks; this stands in for one in `waiting_catches`, with the
    id `trigger:<element>`."""

    def __init__(self, wf: BpmnWorkflow, spec: Any) -> None:
        self.id = f"{TRIGGER}{spec.bpmn_id}"
        self.task_spec = spec
        self.workflow = wf
        self.data: dict[str, Any] = {}


def _triggers(wf: BpmnWorkflow) -> list[_Trigger]:
    if wf.is_completed():
        return []
    out = []
    for name in getattr(wf.spec.start, "trigger_specs", []):
        sub = wf.subprocess_specs.get(name)
        out.extend(_Trigger(wf, ts) for ts in (sub.bpmn_start_events if sub is not None else []))
    return out


def deliver(wf: BpmnWorkflow, task_id: Any, data: dict[str, Any], correlation: dict[str, Any],
            now: datetime, limits: Limits | None = None) -> None:
    """Hand a message to the waiting catch event or receive task `task_id` (or the event
    subprocess start event `trigger:<element>`), then run on."""
    if isinstance(task_id, str) and task_id.startswith(TRIGGER):
        trigger = next((t for t in _triggers(wf) if t.id == task_id), None)
        if trigger is None or _message_name(trigger) is None:
            raise MessageNotCaught(task_id)
        with spiff_time(now), contained(limits), failures(wf):
            # Spiff starts the event subprocess whose start event catches this message.
            wf.catch(BpmnEvent(trigger.task_spec.event_definition, dict(data), {}))
            for task in wf.get_tasks(state=SpiffState.READY):
                if task.task_spec is trigger.task_spec:
                    task.set_data(**data)
            wf.do_engine_steps()
        return
    try:
        task_id = task_id if isinstance(task_id, uuid.UUID) else uuid.UUID(str(task_id))
    except ValueError:
        raise MessageNotCaught(str(task_id)) from None
    task = wf.get_task_from_id(task_id)
    if task is None or task.state != SpiffState.WAITING or _message_name(task) is None:
        raise MessageNotCaught(str(task_id))
    with spiff_time(now), contained(limits), failures(wf):
        _catch(task, data, correlation)
        wf.do_engine_steps()


def _message_name(task: Any) -> str | None:
    definition = getattr(task.task_spec, "event_definition", None)
    return definition.name if isinstance(definition, MessageEventDefinition) else None


def _catch(task: Any, data: dict[str, Any], correlation: dict[str, Any]) -> None:
    # The message's data becomes the case's data, and so do its correlation values under the
    # names the diagram's retrieval expressions read (so later catches of the case expect them).
    # We pick the task ourselves (routing is by our index), so Spiff's own matching is skipped.
    definition = task.task_spec.event_definition
    payload = dict(data)
    spiff_correlations: dict[str, dict[str, Any]] = {}
    for prop in definition.correlation_properties:
        if prop.name not in correlation:
            continue
        value = correlation[prop.name]
        expression = (prop.retrieval_expression or "").strip()
        if expression.isidentifier() and expression not in payload:
            payload[expression] = value
        for key in prop.correlation_keys:
            spiff_correlations.setdefault(key, {})[prop.name] = value
    task.set_data(**payload)
    task.task_spec.catch(task, BpmnEvent(definition, payload, spiff_correlations))
    task.task_spec._update(task)


def waiting_events_of(wf: BpmnWorkflow) -> list[Any]:
    """Tasks waiting for an event: timers, messages, signals (and any other catch)."""
    return [t for t in wf.get_tasks(state=SpiffState.WAITING)
            if getattr(t.task_spec, "event_definition", None) is not None]


_MISSING = object()


def waiting_catches(wf: BpmnWorkflow) -> list[tuple[Any, str, str, dict[str, Any] | None]]:
    """(task, kind "message"|"signal", name, expected correlation) for each catch event or
    receive task waiting for a message or signal. The expected correlation is {property:
    value}: what the workflow already holds for the property (from an earlier message), else
    the property's retrieval expression over the task's data; None if neither is known."""
    return _catches([*wf.get_tasks(state=SpiffState.WAITING), *_triggers(wf)])


def _catches(tasks: list[Any]) -> list[tuple[Any, str, str, dict[str, Any] | None]]:
    out = []
    for task in tasks:
        definition = getattr(task.task_spec, "event_definition", None)
        if isinstance(definition, SignalEventDefinition):
            out.append((task, "signal", definition.name, {}))
        elif isinstance(definition, MessageEventDefinition):
            out.append((task, "message", definition.name, _expected(task, definition)))
    return out


def _expected(task: Any, definition: MessageEventDefinition) -> dict[str, Any] | None:
    expected: dict[str, Any] = {}
    held = task.workflow.correlations or {}
    for prop in definition.correlation_properties:
        value = next((held[key][prop.name] for key in prop.correlation_keys
                      if prop.name in held.get(key, {})), _MISSING)
        if value is _MISSING:
            try:
                value = evaluate(prop.retrieval_expression, dict(task.data))
            except Exception:  # noqa: BLE001 - the data does not hold it (yet)
                return None
        expected[prop.name] = value
    return expected


def stuck_at(wf: BpmnWorkflow) -> list[str] | None:
    """The elements an unfinished workflow holds its tokens at when it waits for nothing (no
    person, timer, message or signal can move it: e.g. a parallel join that a token can no
    longer reach); None when it can still move."""
    if wf.is_completed() or ready_user_tasks(wf) or waiting_timers(wf) or waiting_catches(wf) \
            or wf.get_tasks(state=SpiffState.READY):
        return None
    return sorted({t.task_spec.bpmn_id or t.task_spec.name for t in wf.get_tasks(state=SpiffState.WAITING)})


@dataclass(frozen=True)
class Tokens:
    """What a workflow waits for, from one walk of its task tree: its ready user tasks, its
    waiting timers (task, due ISO string) and its waiting message and signal catches (as
    `waiting_catches` gives them)."""

    ready: list[Any]
    timers: list[tuple[Any, str]]
    catches: list[tuple[Any, str, str, dict[str, Any] | None]]


def tokens(wf: BpmnWorkflow) -> Tokens:
    ready, timers, waiting = [], [], []
    for task in wf.get_tasks(state=SpiffState.READY | SpiffState.WAITING):
        if task.state == SpiffState.READY:
            if task.task_spec.manual:
                ready.append(task)
            continue
        waiting.append(task)
        value = task._get_internal_data("event_value")
        if isinstance(value, str):
            timers.append((task, value))
    return Tokens(ready, timers, _catches([*waiting, *_triggers(wf)]))


def ready_user_tasks(wf: BpmnWorkflow) -> list[Any]:
    return wf.get_tasks(state=SpiffState.READY, manual=True)


def waiting_timers(wf: BpmnWorkflow) -> list[tuple[Any, str]]:
    """(task, due ISO string) for each waiting timer whose due time is known."""
    out = []
    for task in wf.get_tasks(state=SpiffState.WAITING):
        value = task._get_internal_data("event_value")
        if isinstance(value, str):
            out.append((task, value))
    return out


def complete(wf: BpmnWorkflow, task: Any, data: dict[str, Any], now: datetime,
             limits: Limits | None = None) -> None:
    with spiff_time(now), contained(limits), failures(wf):
        task.set_data(**data)
        task.run()
        wf.do_engine_steps()


def decisions(wf: BpmnWorkflow, limits: Limits | None = None) -> list[tuple[str, Any, str | None]]:
    """(element, output, matched rule id) of each completed business rule task still in the
    workflow's history: which row of the decision table gave the outcome. Asked right after the
    step that ran the decision, before the finished history is pruned."""
    out = []
    for task in wf.get_tasks(state=SpiffState.COMPLETED):
        engine = getattr(task.task_spec, "dmnEngine", None)
        if engine is None:
            continue
        with contained(limits):
            rules = engine.decide(task)
        outputs = [o.name for o in engine.decision_table.outputs]
        value = task.data.get(outputs[0]) if len(outputs) == 1 else {o: task.data.get(o) for o in outputs}
        out.append((task.task_spec.bpmn_id, value, rules[0].id if rules else None))
    return out
def current_tokens(wf: BpmnWorkflow) -> list[Any]:
    """Where the case is now: its ready user tasks and the catches it waits at (timers,
    messages, signals), in the workflow and its subprocesses."""
    ready = ready_user_tasks(wf)
    waiting = [t for t in wf.get_tasks(state=SpiffState.WAITING) if not isinstance(t.task_spec, StartEvent)]
    return ready + waiting


def error_tasks(wf: BpmnWorkflow) -> list[Any]:
    return wf.get_tasks(state=SpiffState.ERROR)


def move_token(wf: BpmnWorkflow, current: Any, step: str) -> Any:
    """Put the token that is at `current` onto the task spec `step` of the same (sub)process.

    A `step` task still in the tree above `current` (a completed step not yet pruned) is reset
    with Spiff's own `reset_from_task_id`. Any other step of the process (an earlier one whose
    history was pruned, or a later one) gets a fresh task in `current`'s place: `current` and
    what was predicted after it are removed, the new task takes `current`'s parent and data, and
    Spiff predicts and readies it as it would have had the flow led there. Returns the new task.
    """
    spec = current.workflow.spec.task_specs[step]
    node = current.parent
    while node is not None:
        if node.task_spec is spec:
            wf.reset_from_task_id(node.id)
            return node
        node = node.parent
    parent, data = current.parent, copy.deepcopy(current.data)
    sub = current.workflow
    sub._remove_task(current.id)
    task = Task(sub, spec, parent, state=SpiffState.FUTURE)
    task.data = data
    spec._predict(task, mask=SpiffState.PREDICTED_MASK | SpiffState.FUTURE)
    spec._update(task)
    return task


def reset_errors(wf: BpmnWorkflow) -> list[Any]:
    """Make each task in ERROR runnable again (Spiff's branch reset); returns them."""
    failed = error_tasks(wf)
    for task in failed:
        wf.reset_from_task_id(task.id)
    return failed
