"""Test runs of a draft: its BPMN run in memory, touching no case and writing nothing.

The draft is checked as a deployment would be (`engine.workflow.specs.check_sources`: unsafe diagram code is
refused there, with its element named), then run with the project's own runtime and bounded script
evaluator (`engine.workflow.runtime`, `engine.workflow.expressions`): each user task is completed with the sample
answers given for its step id (checked against its form, as a caseworker's would be), each timer
fires as soon as nothing else can move (the sandbox's clock jumps to its due time), and the run stops
at the first step it has no answers for, at a message or signal it would wait for, at an error, or
after MAX_STEPS actions (a loop the answers never leave). What comes back is the path taken (element
ids, in order), where it stopped, and the error with its element.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState as SpiffState
from sqlalchemy.orm import Session

from engine.env import Env
from engine.errors import Invalid
from engine.models import User
from engine.org import Organisation
from engine.security.access import require_designer
from engine.settings import Limits
from engine.workflow import drafts, limits, runtime, specs
from engine.workflow import forms as form_rules
from engine.workflow.expressions import limit_exceeded

# Actions (start, one task completed, one timer fired) before a run is stopped as looping.
MAX_STEPS = 200
MAX_ANSWER_STEPS = 500


class RunStatus:
    COMPLETED = "completed"  # the process reached its end
    WAITING = "waiting"  # it waits for answers not given, or for a message or signal
    ERROR = "error"  # an element failed (a script, a condition, a limit, answers its form refuses)
    STEP_LIMIT = "step_limit"  # still moving after MAX_STEPS actions


@dataclass
class RunResult:
    process_key: str
    status: str
    path: list[str] = field(default_factory=list)
    # what it stopped at: [{"element", "kind": "task"|"timer"|"message"|"signal"|"event"}]
    waiting: list[dict[str, str]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    # the case data at the end (what the answers and the diagram's code made of it)
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"process_key": self.process_key, "status": self.status, "path": self.path,
                "waiting": self.waiting, "error": self.error, "data": self.data}


def check_answers(answers: Any) -> dict[str, dict[str, Any]]:
    if answers is None:
        return {}
    if not isinstance(answers, dict):
        raise Invalid("answers はステップIDから回答への対応で送ってください / answers must be an object "
                      "{step id: {field: value}}", {"answers": "not an object"})
    if len(answers) > MAX_ANSWER_STEPS:
        raise Invalid(f"answers のステップが多すぎます / answers names more than {MAX_ANSWER_STEPS} steps",
                      {"answers": f"more than {MAX_ANSWER_STEPS} steps"})
    for step, value in answers.items():
        if not isinstance(value, dict):
            raise Invalid(f"ステップ {step} の回答がオブジェクトではありません / The answers of step {step} must be "
                          "an object", {f"answers.{step}": "not an object"})
        limits.check_depth(value)
    return dict(answers)


def run_draft(session: Session, env: Env, actor: User, bpmn: Any, answers: Any, now: datetime,
              dmn: dict[str, str] | None = None, forms: dict[str, dict[str, Any]] | None = None) -> RunResult:
    """Test-run a draft's BPMN (with the DMN and forms it may call, see `drafts.known_sources`)."""
    require_designer(actor)
    bpmn, dmn, _ = drafts.check_draft(bpmn, dmn, None)
    sources = drafts.known_sources(session, env.settings, bpmn, dmn, forms)
    return test_run(actor, sources, env.org, answers, now, env.settings.script_limits)


def test_run(actor: User, sources: specs.Sources, org: Organisation, answers: Any, now: datetime,
             script_limits: Limits | None = None) -> RunResult:
    """Run the first executable process of `sources` with `answers`; nothing is stored.
    A draft that would be refused at deploy raises DeployError (element named), like a deploy."""
    require_designer(actor)
    answers = check_answers(answers)
    checked = specs.check_sources(sources, org)[0]
    defn = specs.load_bundle(checked.process_key, checked.bundle, org)
    wf = runtime.new_workflow(defn)
    run = RunResult(defn.process_key, RunStatus.WAITING)
    seen: set[Any] = set()
    group_ids = org.group_ids()

    def record() -> None:
        done = [t for t in wf.get_tasks(state=SpiffState.COMPLETED)
                if t.id not in seen and getattr(t.task_spec, "bpmn_id", None)]
        done.sort(key=lambda t: (t.last_state_change, t.depth))
        for t in done:
            seen.add(t.id)
            run.path.append(t.task_spec.bpmn_id)

    def fail(element: str | None, message: str, fields: dict[str, str] | None = None) -> RunResult:
        run.status = RunStatus.ERROR
        run.error = {"element": element, "message": message, **({"fields": fields} if fields else {})}
        return run

    start_ids = [ts.bpmn_id for ts in defn.spec.task_specs.values() if isinstance(ts, StartEvent)]
    start_data = next((answers[s] for s in start_ids if s in answers), {})
    try:
        if defn.start_form is not None:
            form_rules.validate(defn.start_form, start_data, group_ids)
        runtime.start(wf, dict(start_data), now, script_limits)
        record()
        for _ in range(MAX_STEPS):
            ready = runtime.ready_user_tasks(wf)
            if ready:
                task = ready[0]
                step = task.task_spec.bpmn_id
                if step not in answers:
                    run.waiting = [{"element": t.task_spec.bpmn_id, "kind": "task"} for t in ready]
                    break
                schema = defn.forms.get(defn.steps[step].form_key or "") if step in defn.steps else None
                if schema is not None:
                    try:
                        data = form_rules.validate(schema, answers[step], group_ids)
                    except Invalid as exc:
                        return fail(step, exc.message, exc.fields)
                    # as a real completion does: the form's defaults for what the answers leave out
                    data = form_rules.with_defaults(schema, data)
                else:
                    data = dict(answers[step])
                runtime.complete(wf, task, dict(data), now, script_limits)
                record()
                continue
            if wf.is_completed():
                run.status = RunStatus.COMPLETED
                break
            timers = runtime.waiting_timers(wf)
            due = [datetime.fromisoformat(value) for _, value in timers]
            if due:
                # Spiff fires a timer once its due time has passed, not at it.
                now = max(now, min(due) + timedelta(seconds=1))
                runtime.run_engine(wf, now, script_limits)
                record()
                continue
            run.waiting = [{"element": t.task_spec.bpmn_id, "kind": kind}
                           for t, kind, _name, _expected in runtime.waiting_catches(wf)] or [
                {"element": t.task_spec.bpmn_id, "kind": "event"} for t in runtime.waiting_events_of(wf)]
            break
        else:
            run.status = RunStatus.STEP_LIMIT
    except SpiffWorkflowException as exc:
        record()
        task = getattr(exc, "task", None)
        element = getattr(getattr(task, "task_spec", None), "bpmn_id", None) if task is not None else None
        limit = limit_exceeded(exc)
        detail = limit.message if limit is not None else (getattr(exc, "error_msg", None)
                                                           or str(exc).splitlines()[0])
        return fail(element, detail)
    except Invalid as exc:
        return fail(start_ids[0] if start_ids else None, exc.message, exc.fields)
    run.data = {k: v for k, v in wf.data.items() if not k.startswith("_")} if run.status == RunStatus.COMPLETED \
        else _data_of(wf)
    return run


def _data_of(wf: Any) -> dict[str, Any]:
    tasks = wf.get_tasks(state=SpiffState.READY | SpiffState.WAITING) or wf.get_tasks(state=SpiffState.COMPLETED)
    return {k: v for k, v in (tasks[-1].data if tasks else {}).items() if not k.startswith("_")}
