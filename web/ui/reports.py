"""The supervisors' pages: the dashboard (stuck counts by reason and age, the heatmap of the
main process, the workload, with charts), the stuck-case list (filters, paging, sort by age,
CSV), and the heatmap on a process's diagram (period, version; a step opens the list filtered
to it). Supervisors, the coordination lead and administrators; the engine refuses anyone else.

Like every page, each view parses the query, calls one domain function, and renders.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, g, render_template, request, url_for
from markupsafe import Markup

from engine.casework import queue as work_queue
from engine.errors import Invalid
from engine.reports import JST, heatmap, stuck, workload
from web.extensions import db, engine_env, now
from web.ui import csrf, errors
from web.ui.auth import load_actor, login_required
from web.ui.i18n import group_name, lang, pick, t

bp = Blueprint("ui_reports", __name__)
bp.before_request(load_actor)
bp.before_request(csrf.protect)
errors.install(bp)

PAGE_SIZE = 50
MAIN_PROCESS = "multi_agency"


def _label(pair: tuple[str, str]) -> str:
    return pair[1] if lang() == "en" else pair[0]


def reason_label(code: str) -> str:
    return _label(stuck.REASON_LABELS.get(code, (code, code)))


def age_label(code: str) -> str:
    return _label(stuck.AGE_LABELS.get(code, (code, code)))


def _json(data: Any) -> Markup:
    """Data for the page's script, safe inside <script type="application/json">."""
    text = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 - escaped above for a script element


def _process_choices() -> list[tuple[str, str, list[tuple[str, str]]]]:
    return work_queue.process_choices(db.session, engine_env())


def _groups() -> list[Any]:
    return list(engine_env().org.groups)


def _heat_labels() -> dict[str, str]:
    return {k: t(f"heat_{k}", n="{n}", h="{h}") for k in ("open", "stuck", "median", "p90")} | {
        "none": t("heat_none"), "error": t("diagram_unavailable_heat")}


def _heat_payload(result: heatmap.Heatmap) -> dict[str, Any]:
    return {"xml": result.bpmn_xml, "labels": _heat_labels(),
            "steps": [{"step": s.step, "name": s.name, "open": s.open, "stuck": s.stuck, "median": s.median_hours,
                       "p90": s.p90_hours, "entered": s.entered,
                       "href": url_for("ui_reports.stuck_list", process=result.process, step=s.step)}
                      for s in result.steps]}


@bp.route("/supervisor")
@login_required
def dashboard() -> Any:
    env, at = engine_env(), now()
    counts = stuck.counts(db.session, env, g.actor, at)
    loads = workload.workload(db.session, env, g.actor, at)
    heat = heatmap.heatmap(db.session, env, g.actor, at, MAIN_PROCESS)
    charts = {
        "reason": {"labels": [reason_label(r) for r in stuck.REASONS], "values": list(counts["by_reason"].values()),
                   "title": t("by_reason")},
        "age": {"labels": [age_label(a) for a in stuck.AGE_BUCKETS], "values": list(counts["by_age"].values()),
                "title": t("by_age")},
        "workload": {"labels": [group_name(env.org.group(r.key)) or r.name for r in loads["groups"][:12]],
                     "series": [{"label": t("col_open"), "values": [r.open for r in loads["groups"][:12]]},
                                {"label": t("col_overdue"), "values": [r.overdue for r in loads["groups"][:12]]},
                                {"label": t("col_claimed"), "values": [r.claimed for r in loads["groups"][:12]]}]},
    }
    return render_template("ui/supervisor_dashboard.html", counts=counts, loads=loads, heat=heat, active="reports",
                           charts=_json(charts), heat_data=_json(_heat_payload(heat)), reasons=stuck.REASONS,
                           buckets=list(stuck.AGE_BUCKETS), reason_label=reason_label, age_label=age_label,
                           group_names={gr.id: gr for gr in _groups()}, actor=g.actor, **_period(heat))


def _period(result: heatmap.Heatmap) -> dict[str, str]:
    """The period's first and last day in Japan, as the page shows them (`to` is exclusive)."""
    return {"period_start": result.start.astimezone(JST).date().isoformat(),
            "period_end": (result.end - result.end.resolution).astimezone(JST).date().isoformat()}


def _list_args() -> tuple[dict[str, str], Any]:
    args = request.args
    shown = {k: args.get(k, "")[:200] for k in ("process", "step", "group", "reason", "age", "min_age_days")}
    min_age: Any = shown["min_age_days"].strip() or None
    if min_age is not None:
        try:
            min_age = int(min_age)
        except ValueError:
            raise Invalid("min_age_days は 0 以上の整数です / min_age_days must be a whole number of days",
                          {"min_age_days": "whole number"}) from None
    filters = stuck.check_filters(shown["process"], shown["step"], shown["group"], shown["reason"], min_age,
                                  shown["age"])
    return shown, filters


@bp.route("/supervisor/stuck")
@login_required
def stuck_list() -> Any:
    env, at = engine_env(), now()
    sort = request.args.get("sort") if request.args.get("sort") in stuck.SORTS else "-age"
    try:
        page_no = min(max(1, int(request.args.get("page") or 1)), 1_000_000)
    except ValueError:
        page_no = 1
    status, problem = 200, None
    try:
        shown, filters = _list_args()
        result = stuck.stuck_page(db.session, env, g.actor, at, filters, sort=sort, limit=PAGE_SIZE,
                                  offset=(page_no - 1) * PAGE_SIZE)
    except Invalid as exc:
        db.session.rollback()
        stuck.require_reader(g.actor)
        status, problem = 422, pick(exc.message)
        shown = {k: request.args.get(k, "")[:200] for k in ("process", "step", "group", "reason", "age",
                                                            "min_age_days")}
        result = stuck.Page([], 0)
    active = {k: v for k, v in shown.items() if v}

    def page_url(**changes: Any) -> str:
        params = {**active, "sort": sort, "page": page_no, **changes}
        params = {k: v for k, v in params.items() if v and not (k == "page" and v == 1)
                  and not (k == "sort" and v == "-age")}
        return url_for("ui_reports.stuck_list") + ("?" + urlencode(params) if params else "")

    pages = max(1, math.ceil(result.total / PAGE_SIZE))
    return render_template(
        "ui/supervisor_stuck.html", page=result, shown=shown, sort=sort, page_no=page_no, pages=pages,
        page_url=page_url, problem=problem, processes=_process_choices(), groups=_groups(), reasons=stuck.REASONS,
        buckets=list(stuck.AGE_BUCKETS), reason_label=reason_label, age_label=age_label, at=at, active="reports",
        first=(page_no - 1) * PAGE_SIZE + 1, last=min(result.total, page_no * PAGE_SIZE),
        csv_url=url_for("ui_reports.stuck_csv", **active, **({"sort": sort} if sort != "-age" else {})),
        group_names={gr.id: gr for gr in _groups()}, actor=g.actor), status


@bp.route("/supervisor/stuck.csv")
@login_required
def stuck_csv() -> Response:
    env = engine_env()
    sort = request.args.get("sort") if request.args.get("sort") in stuck.SORTS else "-age"
    try:
        _shown, filters = _list_args()
    except Invalid as exc:  # a download has no page to show the form on: an error page naming the filter
        stuck.require_reader(g.actor)
        return Response(render_template("ui/error.html", status=422, title=t("error_title"), body=pick(exc.message)),
                        422)
    rows = stuck.stuck_export(db.session, env, g.actor, now(), filters, sort=sort)
    stamp = now().astimezone(JST).strftime("%Y%m%d-%H%M")
    return Response(stuck.to_csv(rows, {gr.id: gr.name for gr in env.org.groups}), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="tsunagu-stuck-{stamp}.csv"'})


@bp.route("/supervisor/heatmap")
@login_required
def heatmap_page() -> Any:
    env, at = engine_env(), now()
    args = request.args
    process = args.get("process", "")[:100] or MAIN_PROCESS
    version, start, end = args.get("version", "")[:12], args.get("from", "")[:40], args.get("to", "")[:40]
    status, problem = 200, None
    try:
        result = heatmap.heatmap(db.session, env, g.actor, at, process, version or None, start or None, end or None)
    except Invalid as exc:
        db.session.rollback()
        status, problem = 422, pick(exc.message)
        result = heatmap.heatmap(db.session, env, g.actor, at, MAIN_PROCESS)
    return render_template(
        "ui/supervisor_heatmap.html", heat=result, heat_data=_json(_heat_payload(result)), problem=problem,
        processes=_process_choices(), shown={"process": process, "version": version, "from": start, "to": end},
        active="reports", actor=g.actor, **_period(result)), status
