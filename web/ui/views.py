"""The staff pages: work queue, task form, case page, start pages.

Each view parses HTTP, calls the same domain functions as the JSON API (engine.casework.cases, and
engine.casework.queue for the queue page) with plain values, and renders. No state is read or changed
any other way.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from engine.casework import cases, escalation, repair, role_holders
from engine.casework import queue as work_queue
from engine.errors import Conflict, Forbidden, Invalid, WorkflowFailed
from engine.models import Case, HumanTask, User
from engine.security import users
from engine.security.access import can_work_on, sees_every_case
from engine.status import SYSTEM_EVENTS, EventKind, Role, TaskState
from engine.workflow.waiting import case_waiting
from web.extensions import db, engine_env, now
from web.ui import case_facts, csrf, errors, forms
from web.ui.auth import load_actor, login_required, safe_next
from web.ui.errors import error_message
from web.ui.i18n import LANGUAGES, pick, t

bp = Blueprint("ui", __name__)
bp.before_request(load_actor)
bp.before_request(csrf.protect)
errors.install(bp)

PAGE_SIZE = 50
# How far past a page the queue is counted (engine.casework.queue.search_queue's count_ahead).
QUEUE_COUNT_AHEAD = 1_000
ESCALATIONS_SHOWN = 50  # the queue's 要対応 section: oldest first; the API pages through all of them
# The task form's submit buttons: a name no form field can have (fields are identifiers).
ACTION = "ui-action"
START_PROCESSES = {"consultation": "multi_agency", "emergency": "emergency"}


def _groups() -> dict[str, Any]:
    """Groups by id, in the order of config/organisation.yaml (lead, secretariat, liaison, referring)."""
    order = {info.id: i for i, info in enumerate(engine_env().org.groups)}
    rows = sorted(users.list_groups(db.session), key=lambda g_: (order.get(g_.id, len(order)), g_.id))
    return {g_.id: g_ for g_ in rows}


# ---------------------------------------------------------------- work queue


def _page(value: str | None) -> int:
    try:
        return min(max(1, int(value or 1)), 1_000_000)
    except ValueError:
        return 1


@bp.route("/")
@login_required
def queue() -> Any:
    args = request.args
    filters = {
        "process": args.get("process", "")[:100],
        "step": args.get("step", "")[:100],
        "group": args.get("group", "")[:64],
        "assignee": args.get("assignee") if args.get("assignee") in work_queue.ASSIGNEE_FILTERS else "any",
        "overdue": "1" if args.get("overdue") == "1" else "",
        "q": args.get("q", "").strip()[:work_queue.MAX_QUERY],
        "sort": args.get("sort") if args.get("sort") in work_queue.SORTS else "due",
    }
    page = _page(args.get("page"))
    at = now()
    items, total = work_queue.read_queue(
        db.session, engine_env(), g.actor, process=filters["process"] or None, step=filters["step"] or None,
        group=filters["group"] or None, assignee=filters["assignee"], overdue=bool(filters["overdue"]),
        q=filters["q"] or None, sort=filters["sort"], page=page, page_size=PAGE_SIZE, now=at,
        count_ahead=QUEUE_COUNT_AHEAD)
    # Counted only so far past this page: a bigger total is shown as "more than", and the pages
    # as far as the count reached, with a link onwards.
    more = total > (page - 1) * PAGE_SIZE + QUEUE_COUNT_AHEAD
    if more:
        total -= 1
    pages = max(1, math.ceil(total / PAGE_SIZE), page + 1 if more else 1)
    groups = _groups()
    supervisor = Role.SUPERVISOR in g.actor.roles
    members = work_queue.group_members(db.session, sorted({i.group_id for i in items if i.group_id})) \
        if supervisor else {}
    processes = work_queue.process_choices(db.session, engine_env())
    active = {k: v for k, v in filters.items() if v and not (k == "assignee" and v == "any")
              and not (k == "sort" and v == "due")}

    def page_url(**changes: Any) -> str:
        params = {**active, "page": page, **changes}
        params = {k: v for k, v in params.items() if v and not (k == "page" and v == 1)}
        return url_for("ui.queue") + ("?" + urlencode(params) if params else "")

    may_repair = repair.may_repair(g.actor)
    escalations: list[escalation.Item] = []
    if may_repair:
        escalations, _ = escalation.list_escalations(db.session, g.actor, limit=ESCALATIONS_SHOWN)
    # Bulk reassignment offers the members of every group on the page.
    bulk_members = work_queue.group_members(db.session, sorted({i.group_id for i in items if i.group_id})) \
        if may_repair and items else {}
    held = role_holders.held_roles(db.session, engine_env(), g.actor, now())
    return render_template(
        "ui/queue.html", held=held, items=items, total=total, page=page, pages=pages, filters=filters, groups=groups,
        my_groups=[groups[gid] for gid in g.actor.group_ids if gid in groups], members=members,
        supervisor=supervisor, processes=processes, page_url=page_url, filtered=bool(active), at=at, more=more,
        here=request.full_path.rstrip("?"), first=(page - 1) * PAGE_SIZE + 1,
        last=(page - 1) * PAGE_SIZE + len(items), may_repair=may_repair, escalations=escalations,
        bulk_members=bulk_members)


def _back() -> Response:
    return redirect(safe_next(request.form.get("next"), url_for("ui.queue")))


def _task_command(command: Any, message: str, **kw: Any) -> Response:
    try:
        row = command()
    except Invalid as exc:
        db.session.rollback()
        flash(" ".join(pick(m) for m in (exc.fields or {}).values()) or error_message(exc), "error")
        return _back()
    except Conflict as exc:  # someone else was first: say so on the page the user came from
        db.session.rollback()
        flash(error_message(exc), "error")
        return _back()
    flash(t(message, step=row.name, **kw), "success")
    return _back()


@bp.route("/tasks/<task_id>/claim", methods=["POST"])
@login_required
def claim(task_id: str) -> Response:
    return _task_command(lambda: cases.claim_task(db.session, engine_env(), g.actor, task_id, now()), "claimed")


@bp.route("/tasks/<task_id>/release", methods=["POST"])
@login_required
def release(task_id: str) -> Response:
    return _task_command(lambda: cases.release_task(db.session, engine_env(), g.actor, task_id, now()), "released")


@bp.route("/tasks/<task_id>/assign", methods=["POST"])
@login_required
def assign(task_id: str) -> Response:
    name = request.form.get("assignee", "")
    return _task_command(lambda: cases.assign_task(db.session, engine_env(), g.actor, task_id, name, now()),
                         "assigned", name=name)


@bp.route("/queue/assign", methods=["POST"])
@login_required
def assign_many() -> Response:
    """The queue's bulk reassignment: the ticked tasks to one member."""
    name = request.form.get("assignee", "")
    ticked = request.form.getlist("task")
    try:
        results = repair.assign_tasks(db.session, engine_env(), g.actor, ticked, name, now())
    except Invalid:
        db.session.rollback()
        flash(t("bulk_none_ticked") if not ticked else t("bulk_no_assignee"), "error")
        return _back()
    done = [r for r in results if r["ok"]]
    refused = [r for r in results if not r["ok"]]
    if done:
        flash(t("bulk_assigned", count=len(done), name=name), "success")
    if refused:
        flash(t("bulk_refused", count=len(refused),
                reasons=" ".join(pick(r["error"]["message"]) for r in refused[:5])), "error")
    return _back()


@bp.route("/escalations/<id:escalation_id>/acknowledge", methods=["POST"])
@login_required
def acknowledge(escalation_id: int) -> Response:
    note = request.form.get("note", "")[:escalation.MAX_NOTE]
    item = escalation.acknowledge(db.session, engine_env(), g.actor, escalation_id, note or None, now())
    flash(t("escalation_acknowledged", number=item.case_number, step=item.step_name), "success")
    return _back()


# ---------------------------------------------------------------- task page


def _earlier_steps(case: Case, exclude_task: str | None = None) -> list[dict[str, Any]]:
    """Completed steps of the case, newest first, with their answers in the forms' words."""
    defn = engine_env().specs.for_case(case)
    groups = _groups()
    out = []
    for event in cases.case_history(db.session, case):
        if event.kind != EventKind.TASK_COMPLETED or event.task_id == exclude_task:
            continue
        info = defn.steps.get(event.step or "")
        schema = defn.forms.get(info.form_key) if info and info.form_key else None
        out.append({"event": event, "answers": forms.describe(schema, event.data, groups)})
    out.reverse()
    return out


def _render_task(row: HumanTask, schema: dict[str, Any] | None, values: dict[str, Any],
                 errors: dict[str, str] | None = None, status: int = 200, extra_rows: dict[str, int] | None = None,
                 message: str | None = None) -> tuple[str, int]:
    groups = _groups()
    fields = forms.build(schema, values, errors, list(groups.values()), extra_rows)
    known = {f.path for f in fields} | {c.path for f in fields for r in f.rows for c in r}
    loose = [pick(m) for k, m in (errors or {}).items() if k not in known
             and not any(k.startswith(f.path + ".") for f in fields if f.kind == "table")]
    assignee = db.session.get(User, row.assignee_id) if row.assignee_id else None
    confirmation = schema is None
    if confirmation:  # no form: the step's documentation says what to confirm
        info = cases.step_info(engine_env(), row)
        schema = {"description": info.documentation} if info and info.documentation else {}
    previous = cases.previous_round(db.session, row) if row.state == TaskState.OPEN else None
    if previous is not None:
        info = cases.step_info(engine_env(), row)
        form = engine_env().specs.for_case(row.case).forms.get(info.form_key) if info and info.form_key else None
        previous = {"event": previous, "answers": forms.describe(form, previous.data, groups)}
    return render_template(
        "ui/task.html", task=row, case=row.case, schema=schema or {}, fields=fields, errors=errors or {},
        confirmation=confirmation, previous=previous,
        reports=role_holders.round_reports(db.session, engine_env(), row) if row.state == TaskState.OPEN else None,
        held_role=role_holders.role_of(db.session, row.case_id, row.group_id),
        loose_errors=loose, groups=groups, earlier=_earlier_steps(row.case, row.id), assignee=assignee,
        can_work=row.state == TaskState.OPEN and can_work_on(g.actor, row), at=now(), message=message,
        process_name=engine_env().specs.for_case(row.case).spec.description or row.process_key,
    ), status


@bp.route("/tasks/<task_id>")
@login_required
def task(task_id: str) -> Any:
    row, schema, data = cases.get_task(db.session, engine_env(), g.actor, task_id, now=now())
    return _render_task(row, schema, data)


@bp.route("/tasks/<task_id>", methods=["POST"])
@login_required
def task_submit(task_id: str) -> Any:
    env = engine_env()
    row, schema, _ = cases.get_task(db.session, env, g.actor, task_id, now=now())
    data = forms.parse(schema, request.form)
    action = request.form.get(ACTION, "")
    if action.startswith("add-row:"):  # without JavaScript: the same form with one more row
        return _render_task(row, schema, data, extra_rows={action.split(":", 1)[1]: 1})
    try:
        if action == "save":
            cases.save_draft(db.session, env, g.actor, task_id, data, now())
            flash(t("draft_saved"), "success")
            return redirect(url_for("ui.task", task_id=task_id))
        if action != "complete":
            abort(400)
        case = cases.complete_task(db.session, env, g.actor, task_id, data, now())
    except Invalid as exc:
        db.session.rollback()
        row, schema, _ = cases.get_task(db.session, env, g.actor, task_id, now=now())
        return _render_task(row, schema, data, errors=exc.fields or {"data": exc.message}, status=422)
    except (Conflict, Forbidden) as exc:
        db.session.rollback()
        row, schema, _ = cases.get_task(db.session, env, g.actor, task_id, now=now())
        return _render_task(row, schema, data, status=exc.status, message=error_message(exc))
    flash(t("completed_step", step=row.name), "success")
    return redirect(url_for("ui.case", case_id=case.id))


# ---------------------------------------------------------------- case page


def _marks(case: Case, steps_done: list[tuple[str, str | None]], open_tasks: list[HumanTask],
           timers: list[Any]) -> dict[str, Any]:
    """Diagram marks: steps done (completed tasks, fired timers) and where the case is now."""
    current: dict[str, str] = {}
    for task_row in open_tasks:
        current.setdefault(task_row.step, task_row.name)
    for timer in timers:
        current.setdefault(timer.step, timer.step_name)
    done = {step: name or step for step, name in steps_done if step not in current}
    return {"done": done, "current": current}


def _before(value: str | None) -> Any:
    """The page of history to show: None (the newest), an event id, or the text as given, which
    cases.history_page refuses by name."""
    if not value:
        return None
    return int(value) if value.isdigit() else value


@bp.route("/cases/<case_id>")
@login_required
def case(case_id: str) -> Any:
    env = engine_env()
    row = cases.get_case(db.session, env, g.actor, case_id, now=now())
    before = _before(request.args.get("before"))
    history, older = cases.history_page(db.session, row, before=before)
    open_tasks = cases.case_open_tasks(db.session, row)
    timers = cases.case_timers(db.session, row)
    linked = cases.linked_cases(db.session, env, g.actor, row)
    defn = env.specs.for_case(row)
    groups = _groups()
    timeline = []
    for event in history:
        schema = None
        if event.kind == EventKind.TASK_COMPLETED:
            info = defn.steps.get(event.step or "")
            schema = defn.forms.get(info.form_key) if info and info.form_key else None
        answers = forms.describe(schema, event.data, groups) \
            if event.kind in (EventKind.TASK_COMPLETED, EventKind.CASE_STARTED, EventKind.CASE_ERROR) else []
        timeline.append({"event": event, "answers": answers,
                         "actor": None if event.kind in SYSTEM_EVENTS else event.actor})
    # web.ui.casefile adds its routes to this module's blueprint, so it is imported here, not above.
    from web.ui import casefile

    file_context = casefile.case_page(row, history, older, before is not None)
    timeline += [{"note": note} for note in file_context["timeline_notes"]]
    timeline.sort(key=lambda item: item["note"].occurred_at if "note" in item else item["event"].at)
    timeline.reverse()
    user_ids = {t_.assignee_id for t_ in open_tasks if t_.assignee_id}
    assignees = {u.id: u for u in (db.session.get(User, i) for i in user_ids) if u}
    return render_template(
        "ui/case.html", case=row, process_name=defn.spec.description or row.process_key, timeline=timeline, open_tasks=open_tasks,
        timers=timers, linked=linked, groups=groups,
        marks=_marks(row, cases.steps_done(db.session, row), open_tasks, timers), older=older, paged=before is not None,
        assignees=assignees, at=now(), can_work={t_.id: can_work_on(g.actor, t_) for t_ in open_tasks},
        consent_by=db.session.get(User, row.consent_recorded_by_id).display_name if row.consent_recorded_by_id else None,
        may_share=sees_every_case(g.actor, env.org),
        share_groups=[gr for gid, gr in groups.items() if gid not in env.org.case_wide_groups],
        waiting=case_waiting(db.session, row), may_repair=repair.may_repair(g.actor),
        move_targets=repair.move_targets(env, row) if repair.may_repair(g.actor) else [],
        **case_facts.case_context(row), **file_context)


def _repair(case_id: str, command: Any, message: str) -> Response:
    """Run a repair of the case page; a refusal is shown on the case page, in the page's language
    (a diagram that still fails: its element and message as the engine gives them)."""
    try:
        command()
    except WorkflowFailed as exc:
        db.session.rollback()
        flash(t("retry_failed", detail=pick(exc.message)), "error")
    except (Invalid, Conflict) as exc:
        db.session.rollback()
        flash(pick(exc.message), "error")
    else:
        flash(t(message), "success")
    return redirect(url_for("ui.case", case_id=case_id))


@bp.route("/cases/<case_id>/retry", methods=["POST"])
@login_required
def retry(case_id: str) -> Response:
    return _repair(case_id, lambda: repair.retry_case(db.session, engine_env(), g.actor, case_id, None, now()),
                   "retried")


@bp.route("/cases/<case_id>/move", methods=["POST"])
@login_required
def move(case_id: str) -> Response:
    to_step, reason = request.form.get("to_step", ""), request.form.get("reason", "")
    return _repair(case_id, lambda: repair.move_case(db.session, engine_env(), g.actor, case_id, to_step, reason,
                                                     now()), "moved")


@bp.route("/cases/<case_id>/diagram")
@login_required
def case_diagram(case_id: str) -> Response:
    """The case's BPMN and its marks, for the bpmn-js viewer on the case page."""
    env = engine_env()
    row = cases.case_row(db.session, env, g.actor, case_id, now=now())
    marks = _marks(row, cases.steps_done(db.session, row), cases.case_open_tasks(db.session, row),
                   cases.case_timers(db.session, row))
    xml = env.specs.for_case(row).bpmn_xml
    response = jsonify({"xml": xml, "done": list(marks["done"]), "current": list(marks["current"])})
    response.headers["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------- start pages


@bp.route("/cases/new/<kind>", methods=["GET", "POST"])
@login_required
def start(kind: str) -> Any:
    process = START_PROCESSES.get(kind)
    if process is None:
        abort(404)
    groups = _groups()
    my_groups = [groups[gid] for gid in g.actor.group_ids if gid in groups]
    summary = request.form.get("summary", "").replace("\r\n", "\n")
    group = request.form.get("group") or (my_groups[0].id if len(my_groups) == 1 else "")
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        data = {"summary": summary}
        try:
            new = cases.start_case(db.session, engine_env(), g.actor, process, data, group or None, now())
        except (Invalid, Forbidden) as exc:
            db.session.rollback()
            status = exc.status
            errors = {k.removeprefix("data."): pick(v) for k, v in (exc.fields or {"data": exc.message}).items()}
            if "summary" in errors:
                errors["summary"] = t("start_summary_required")
            if "group" in errors:  # the engine's words are for the API; say it for this page
                errors["group"] = t("start_group_not_yours") if isinstance(exc, Forbidden) else t("start_group_required")
        else:
            flash(t("case_started", number=new.number), "success")
            return redirect(url_for("ui.case", case_id=new.id))
    return render_template("ui/start.html", kind=kind, process=process, my_groups=my_groups, summary=summary,
                           group=group, errors=errors), status


# ---------------------------------------------------------------- language


@bp.route("/lang", methods=["POST"])
def set_language() -> Response:
    value = request.form.get("lang")
    if value in LANGUAGES:
        session["lang"] = value
    return redirect(safe_next(request.form.get("next"), url_for("ui.queue")))
