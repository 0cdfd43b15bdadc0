"""Process versions for designers: the versions of each process, a version's files, validating and
deploying one diagram, the difference between two versions, moving running cases from one
version to another, and writing the latest versions back as files.

Every deployment is an immutable `ProcessDefinition` row (author, time, comment, content hash);
a case keeps the version it runs on until it is migrated. A migration moves one case in one
transaction: its workflow is realigned on the other version's spec (SpiffWorkflow's
`SpecDiff` and `WorkflowDiff`, moved as `migrate_workflow` does but without its reset), its
waiting timers keep their due times, and the one write path
(`engine.casework.writes.sync`) brings its tasks, timers and history in line, with a history event, an
audit record and a `case.migrated` outbox event. A case can be moved back the same way: no
version is ever deleted.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.util.diff import SpecDiff, WorkflowDiff, diff_dependencies
from SpiffWorkflow.util.task import TaskState as SpiffState
from sqlalchemy import select
from sqlalchemy.orm import Session, load_only

from engine.casework import writes
from engine.clock import spiff_time
from engine.env import Env
from engine.errors import Conflict, DeployRefused, DomainError, Invalid, NotFound
from engine.models import Case, HumanTask, ProcessDefinition, User
from engine.ops.db import command
from engine.security import audit
from engine.security.access import require_designer
from engine.status import CaseStatus, EventKind, OutboxKind, TaskState
from engine.workflow import form_store, lint, runtime, specs
from engine.workflow.expressions import contained
from engine.workflow.limits import check_int
from engine.workflow.lint import Problem

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
MAX_COMMENT = 2000
# Tasks a case is at: what must exist in the version it moves to.
ACTIVE = SpiffState.READY | SpiffState.WAITING | SpiffState.STARTED


# ---------------------------------------------------------------- versions and their files


def list_processes(session: Session, actor: User | None) -> list[dict[str, Any]]:
    require_designer(actor)
    rows = session.scalars(select(ProcessDefinition).options(load_only(
        ProcessDefinition.process_key, ProcessDefinition.version, ProcessDefinition.name,
        ProcessDefinition.deployed_at, ProcessDefinition.deployed_by, ProcessDefinition.comment))
        .order_by(ProcessDefinition.process_key, ProcessDefinition.version))
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        item = out.setdefault(row.process_key, {"key": row.process_key, "versions": []})
        item["name"], item["latest_version"] = row.name, row.version
        item["versions"].append({"version": row.version, "created_at": row.deployed_at, "author": row.deployed_by,
                                 "comment": row.comment})
    return list(out.values())


def get_version(session: Session, actor: User | None, key: str, version: object) -> ProcessDefinition:
    require_designer(actor)
    check_int(version, "version", 1)
    row = session.scalar(select(ProcessDefinition).where(ProcessDefinition.process_key == key,
                                                         ProcessDefinition.version == version))
    if row is None:
        raise NotFound(f"プロセス {key!r} の v{version} はありません / process {key!r} has no version {version}")
    return row


def bpmn_of(row: ProcessDefinition) -> str:
    return next(iter(row.bundle["bpmn"].values()))


def dmn_of(row: ProcessDefinition, name: str) -> str:
    files = row.bundle.get("dmn", {})
    for candidate in (name, f"{name}.dmn"):
        if candidate in files:
            return files[candidate]
    raise NotFound(f"v{row.version} に DMN {name!r} はありません / version {row.version} has no DMN file {name!r}")


def latest_rows(session: Session) -> list[ProcessDefinition]:
    rows = list(session.scalars(select(ProcessDefinition).order_by(ProcessDefinition.process_key,
                                                                   ProcessDefinition.version)))
    latest: dict[str, ProcessDefinition] = {}
    for row in rows:
        latest[row.process_key] = row
    return sorted(latest.values(), key=lambda r: r.deployed_at)


def current_dmn(session: Session) -> dict[str, str]:
    """The DMN files of every process's latest version (the latest deployment wins a name)."""
    out: dict[str, str] = {}
    for row in latest_rows(session):
        out.update(row.bundle.get("dmn", {}))
    return out


# ---------------------------------------------------------------- validate and deploy one diagram


def _xml_text(body: object) -> str:
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid("BPMN は UTF-8 の XML で送ってください / the BPMN must be UTF-8 XML",
                          {"body": "not UTF-8"}) from None
    if not isinstance(body, str) or not body.strip():
        raise Invalid("BPMN の XML を送ってください / send the BPMN XML as the request body", {"body": "empty"})
    return body


def process_ids(xml: str) -> list[str]:
    """The executable processes the diagram defines, in the order it defines them."""
    try:
        root = etree.fromstring(xml.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True))
    except (etree.XMLSyntaxError, ValueError):
        return []
    return [p.get("id") for p in root.iter(f"{{{BPMN_NS}}}process")
            if p.get("id") and p.get("isExecutable", "false").lower() == "true"]


def _file_name(session: Session, keys: list[str]) -> str:
    """The file the diagram is kept (and exported) as: the previous version's, or `<process>.bpmn`."""
    for key in keys:
        previous = specs.latest_definition(session, key)
        if previous is not None:
            return next(iter(previous.bundle["bpmn"]))
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", keys[0] if keys else "process")[:100]
    return f"{stem}.bpmn"


def sources_for(session: Session, xml: str) -> specs.Sources:
    """One diagram with the DMN files currently deployed and the forms currently stored."""
    return specs.Sources({_file_name(session, process_ids(xml)): xml}, current_dmn(session),
                         form_store.latest_forms(session))


def check_diagram(sources: specs.Sources, env: Env) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) of a deployment: every one of the engine's checks (`specs.validate`,
    each naming its element) and bpmnlint's rules, the same the modeler runs."""
    found, cautions = specs.validate(sources, env.org)
    errors = [Problem(p["element"] or None, p["message"]) for p in found]
    warnings = [Problem(p["element"] or None, p["message"]) for p in cautions]
    for xml in sources.bpmn.values():
        lint_errors, lint_warnings = lint.lint(xml)
        errors += lint_errors
        warnings += lint_warnings
    return errors, warnings


def validate(session: Session, env: Env, actor: User | None, body: object) -> tuple[list[Problem], list[Problem]]:
    require_designer(actor)
    return check_diagram(sources_for(session, _xml_text(body)), env)


def refusal(errors: list[Problem]) -> DeployRefused:
    fields: dict[str, str] = {}
    for problem in errors:
        key = problem.element or "body"
        fields[key] = f"{fields[key]}; {problem.message}" if key in fields else problem.message
    first = errors[0]
    return DeployRefused(f"登録できません（{len(errors)} 件の問題）/ The diagram was refused ({len(errors)} "
                         f"problem(s)): {first.message}", fields)


def deploy_diagram(session: Session, env: Env, actor: User, body: object, comment: object,
                   now: datetime) -> specs.DeployResult:
    """Deploy one diagram as the next version of the process it names (its first, if several).
    A deploy through the API is explicit: it may follow a version from another diagram."""
    require_designer(actor)
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
        raise Invalid(f"コメントは {MAX_COMMENT} 文字以内です / comment must be at most {MAX_COMMENT} characters",
                      {"comment": f"at most {MAX_COMMENT} characters"})
    xml = _xml_text(body)
    sources = sources_for(session, xml)
    errors, _warnings = check_diagram(sources, env)
    if errors:
        raise refusal(errors)
    results = specs.deploy(session, sources, env.org, now, actor=actor.name, comment=comment or None,
                           new_version=True)
    order = process_ids(xml)
    return min(results, key=lambda r: order.index(r.process_key) if r.process_key in order else len(order))


# ---------------------------------------------------------------- diff


def _ids(spec: Any) -> set[str]:
    # Spiff's own specs (Start, End, the joins it adds) have no BPMN id: not elements of the diagram.
    return {ts.bpmn_id for ts in spec.task_specs.values() if getattr(ts, "bpmn_id", None)}


def _changed(spec_diff: SpecDiff) -> set[str]:
    return {old.bpmn_id for old, new in spec_diff.alignment.items()
            if new is not None and getattr(old, "bpmn_id", None) and old.bpmn_id == getattr(new, "bpmn_id", None)
            and spec_diff.comparisons.get(old)}


def diff(session: Session, env: Env, actor: User | None, key: str, old: int, new: int) -> dict[str, list[str]]:
    """Elements added, removed and changed from version `old` to version `new`, by element id, as a
    visual diff shows them: an element whose id changed is one removed and one added (SpiffWorkflow's
    `SpecDiff` may still align the two for a migration). Changed: an element of both whose
    attributes (name, properties, flows...) differ."""
    a = env.specs.get(get_version(session, actor, key, old))
    b = env.specs.get(get_version(session, actor, key, new))
    registry = runtime.SERIALIZER.registry
    old_specs = {a.spec.name: a.spec, **a.subprocess_specs}
    new_specs = {b.spec.name: b.spec, **b.subprocess_specs}
    before = set().union(*(_ids(s) for s in old_specs.values()))
    after = set().union(*(_ids(s) for s in new_specs.values()))
    changed: set[str] = _changed(SpecDiff(registry, a.spec, b.spec))
    deps, _new = diff_dependencies(registry, a.subprocess_specs, b.subprocess_specs)
    for dep in deps.values():
        if dep is not None:
            changed |= _changed(dep)
    return {"added": sorted(after - before), "removed": sorted(before - after), "changed": sorted(changed & after)}


# ---------------------------------------------------------------- migration


class Blocked(Conflict):
    """A case cannot move to the other version; the message says why."""


def _step(task: Any) -> str:
    spec = task.task_spec
    name = getattr(spec, "bpmn_name", None)
    return f"{spec.bpmn_id}（{name}）" if name else str(getattr(spec, "bpmn_id", None) or spec.name)


def realign(wf: Any, target: specs.LoadedDefinition, now: datetime, limits: Any = None) -> None:
    """Move the workflow `wf` onto `target`'s spec, in place; raise Blocked (and leave `wf` as it
    was, unusable) if a step the case is at has no counterpart there. Waiting timers keep their
    due times and tasks their data (see `_move`)."""
    registry = runtime.SERIALIZER.registry
    to = target.version
    top_spec = SpecDiff(registry, wf.spec, target.spec)
    plans = [(wf, WorkflowDiff(wf, top_spec), top_spec, target.spec)]
    for sub in wf.subprocesses.values():
        new_sub = target.subprocess_specs.get(sub.spec.name)
        if new_sub is None:
            raise Blocked(f"サブプロセス {sub.spec.name} は v{to} にありません / subprocess {sub.spec.name} is not "
                          f"in version {to}")
        sub_spec = SpecDiff(registry, sub.spec, new_sub)
        plans.append((sub, WorkflowDiff(sub, sub_spec), sub_spec, new_sub))
    for _, wdiff, sdiff, _ in plans:
        for task in wdiff.removed:
            if task.has_state(ACTIVE):
                raise Blocked(f"案件が今いる {_step(task)} は v{to} にありません / the case is at step {_step(task)}, "
                              f"which version {to} does not have")
        for task in wdiff.changed:
            if task.has_state(ACTIVE) and "typename" in sdiff.changed.get(task.task_spec, []):
                raise Blocked(f"案件が今いる {_step(task)} は v{to} で別の種類の要素です / the case is at step "
                              f"{_step(task)}, which is another kind of element in version {to}")
    with spiff_time(now), contained(limits):
        for workflow, wdiff, _, new_spec in plans:
            _move(workflow, wdiff, new_spec)
    wf.subprocess_specs = dict(target.subprocess_specs)
    known = {id(ts) for ts in target.spec.task_specs.values()}
    for sub in target.subprocess_specs.values():
        known |= {id(ts) for ts in sub.task_specs.values()}
    for task in wf.get_tasks(state=SpiffState.NOT_FINISHED_MASK):
        if id(task.task_spec) not in known:
            raise Blocked(f"{_step(task)} を v{to} の要素に対応づけられません / step {_step(task)} cannot be "
                          f"matched to an element of version {to}")


def _move(workflow: Any, wdiff: WorkflowDiff, new_spec: Any) -> None:
    """SpiffWorkflow's `migrate_workflow` without its reset: that gives every ready and waiting
    task its parent's data (after pruning, an empty root's: the case data is lost) and a fresh
    start, so timers would count again from now. Here each task takes its aligned spec, and only
    what lies ahead of the tasks the case is at is predicted again from the new spec."""
    workflow.spec = new_spec
    for task in workflow.tasks.values():
        aligned = wdiff.alignment.get(task)
        if aligned is not None:
            task.task_spec = aligned
    for task in list(workflow.get_tasks(state=SpiffState.READY | SpiffState.WAITING, skip_subprocesses=True)):
        if task.id in workflow.tasks:
            task._drop_children(force=True)
            task.task_spec._predict(task, mask=SpiffState.PREDICTED_MASK | SpiffState.DEFINITE_MASK)
    if workflow.last_task is not None and workflow.last_task.id not in workflow.tasks:
        workflow.last_task = None


def _reason_not_movable(case: Case) -> str | None:
    if case.status == CaseStatus.COMPLETED:
        return "案件は完了しています / the case is completed"
    if case.status == CaseStatus.ERROR:
        return "案件がエラー状態です。先に解消してください / the case is in error; resolve that first"
    return None


def preview(session: Session, env: Env, actor: User | None, key: str, old: int,
            new: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(movable, blocked) running cases of version `old` if they moved to `new`; nothing changes."""
    a = get_version(session, actor, key, old)
    target = env.specs.get(get_version(session, actor, key, new))
    movable, blocked = [], []
    for case in session.scalars(select(Case).where(Case.definition_id == a.id, Case.status != CaseStatus.COMPLETED)
                                .order_by(Case.created_at, Case.number)):
        item = {"case_id": case.id, "number": case.number}
        reason = _reason_not_movable(case)
        if reason is None:
            try:
                _defn, wf = writes.load(env, case)
                realign(wf, target, case.updated_at, env.settings.script_limits)
            except DomainError as exc:
                reason = exc.message
            except Exception as exc:  # noqa: BLE001 - whatever Spiff raises is this case's reason
                reason = f"移行できません / cannot be migrated: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        if reason is None:
            movable.append(item)
        else:
            blocked.append({**item, "reason": reason})
    return movable, blocked


@dataclass
class MigrationResult:
    migrated: list[dict[str, Any]]
    failed: list[dict[str, Any]]


def migrate(session: Session, env: Env, actor: User | None, key: str, old: object, new: object,
            case_ids: object, now: datetime) -> MigrationResult:
    """Move the listed cases (default: every movable case) of version `old` to version `new`, each
    in a transaction of its own: one case that cannot move does not stop the others."""
    for name, value in (("from", old), ("to", new)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid(f"{name} は版番号です / {name} must be a version number", {name: "a version number"})
    a = get_version(session, actor, key, old)
    b = get_version(session, actor, key, new)
    if a.id == b.id:
        raise Invalid("移行元と移行先が同じ版です / from and to are the same version", {"to": "same as from"})
    if case_ids is None:
        ids = [item["case_id"] for item in preview(session, env, actor, key, old, new)[0]]
    elif isinstance(case_ids, list) and all(isinstance(c, str) for c in case_ids) and len(case_ids) <= 10000:
        ids = list(dict.fromkeys(case_ids))
    else:
        raise Invalid("cases は案件 id の一覧です / cases must be a list of case ids", {"cases": "a list of case ids"})
    session.commit()  # ends the read transaction; each case gets a write transaction of its own
    result = MigrationResult([], [])
    a_id, b_id = a.id, b.id
    for case_id in ids:
        try:
            migrate_case(session, env, actor, case_id, a_id, b_id, now)
            result.migrated.append({"case_id": case_id})
        except DomainError as exc:
            result.failed.append({"case_id": case_id, "reason": exc.message})
        except Exception as exc:  # noqa: BLE001 - reported for this case; the next one still runs
            result.failed.append({"case_id": case_id, "reason": f"移行できません / cannot be migrated: "
                                                                f"{type(exc).__name__}: {str(exc)[:300]}"})
    return result


@command
def migrate_case(session: Session, env: Env, actor: User | None, case_id: str, from_id: int, to_id: int,
                 now: datetime) -> Case:
    """Move one case from definition `from_id` to `to_id` (same process), in this transaction."""
    old = session.get(ProcessDefinition, from_id)
    new = session.get(ProcessDefinition, to_id)
    case = session.get(Case, case_id)
    if case is None or old is None or new is None or case.process_key != old.process_key or new.process_key != old.process_key:
        raise NotFound(f"プロセス {old.process_key if old else '?'} の案件 {case_id} はありません / no case "
                       f"{case_id} of this process")
    if case.definition_id != old.id:
        current = session.get(ProcessDefinition, case.definition_id)
        raise Conflict(f"案件は v{current.version if current else '?'} で動いています（v{old.version} ではありません）"
                       f" / the case runs on version {current.version if current else '?'}, not {old.version}")
    reason = _reason_not_movable(case)
    if reason is not None:
        raise Conflict(reason)
    _defn, wf = writes.load(env, case)
    target = env.specs.get(new)
    realign(wf, target, now, env.settings.script_limits)
    case.definition_id, case.definition = new.id, new
    _follow_steps(session, env, case, target, wf)
    # Realigned in place onto the new spec: its next step starts from the stored state.
    writes.sync(session, env, case, target, wf, actor, now, reuse=False)
    change = {"from": old.version, "to": new.version}
    writes.history(session, case, EventKind.CASE_MIGRATED, now, actor, data=change)
    writes.emit(session, OutboxKind.CASE_MIGRATED, case, now, from_version=old.version, to_version=new.version)
    audit.record(session, actor, audit.Action.CASE_MIGRATE, now, case, {"process": case.process_key, **change},
                 actor_name=None if actor else "cli")
    writes.commit(session)
    return case


def _follow_steps(session: Session, env: Env, case: Case, target: specs.LoadedDefinition, wf: Any) -> None:
    """Open tasks keep their ids (and drafts, assignees) across a migration; their step (an element
    Spiff aligned under another id), name, form and lane become the new version's. A task whose
    lane moved to another group leaves its assignee."""
    for row in session.scalars(select(HumanTask).where(HumanTask.case_id == case.id,
                                                       HumanTask.state == TaskState.OPEN)):
        task = wf.get_task_from_id(uuid.UUID(row.id))
        step = getattr(getattr(task, "task_spec", None), "bpmn_id", None) or row.step
        info = target.steps.get(step)
        if info is None:
            continue  # sync cancels it: the task is no longer a user task of the case
        row.step = step
        group = writes.task_group(env, case, info, task.data if task is not None else {})
        if group != row.group_id:
            row.assignee_id = None
        row.name, row.form_key, row.lane, row.group_id = info.name, info.form_key, info.lane, group


# ---------------------------------------------------------------- export


def export(session: Session, directory: Path) -> list[Path]:
    """Write the latest version of every process (its BPMN and DMN files) and the newest version
    of every form (`forms/<key>.json`) into `directory`, the layout `tsunagu init`/`deploy` reads."""
    directory = Path(directory)
    (directory / "forms").mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    forms: dict[str, dict[str, Any]] = {}
    for row in latest_rows(session):
        for kind in ("bpmn", "dmn"):
            for name, text in row.bundle.get(kind, {}).items():
                name = Path(name).name
                if name in files and files[name] != text:
                    name = f"{Path(name).stem}.{row.process_key}{Path(name).suffix}"
                files[name] = text
        forms.update(row.bundle.get("forms", {}))
    forms.update(form_store.latest_forms(session))
    written = []
    for name, text in sorted(files.items()):
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    for key, schema in sorted(forms.items()):
        path = directory / "forms" / f"{key}.json"
        path.write_text(json.dumps(schema, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
