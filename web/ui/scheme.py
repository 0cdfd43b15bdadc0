"""The scheme's pages: record a consultation at any window and list them, consultation
days (総合相談会) with their walk-ins and report, the participation places register, and
the statistics (tables, charts, CSV).

Like every page, each view parses the form, calls one domain function, and renders.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for

from engine.casework import consultations, places
from engine.errors import DomainError, Forbidden, Invalid
from engine.reports import statistics
from web.extensions import db, engine_env, now
from web.ui import csrf, errors
from web.ui.auth import load_actor, login_required
from web.ui.i18n import pick, t

bp = Blueprint("ui_scheme", __name__)
bp.before_request(load_actor)
bp.before_request(csrf.protect)
errors.install(bp)


def _render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(template, actor=g.actor, **context), status


def _error_text(exc: DomainError) -> dict[str, str]:
    fields = exc.fields or {}
    return {k: pick(v) for k, v in fields.items()} or {"form": pick(exc.message)}


def _groups_of_actor() -> list[Any]:
    org = engine_env().org
    return [org.group(gid) for gid in g.actor.group_ids if org.group(gid) is not None]


# ---------------------------------------------------------------- consultations


def _form_page(form: dict[str, Any], errors_: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    env = engine_env()
    mine = _groups_of_actor()
    group = form.get("group") or (mine[0].id if mine else None)
    vocab = consultations.vocabulary(env)
    return _render("ui/consultation_new.html", status, active="consultations", form=form, errors=errors_ or {},
                   my_groups=mine, categories=vocab.categories(group), channels=vocab.channels, group=group,
                   today=now().date().isoformat())


@bp.route("/consultations/new")
@login_required
def consultation_new() -> Any:
    form = {"group": request.args.get("group", "")[:64]}
    return _form_page(form)


@bp.route("/consultations/new", methods=["POST"])
@login_required
def consultation_record() -> Any:
    f = request.form
    form = {k: f.get(k, "").strip() for k in ("received_on", "group", "channel", "content", "response", "note",
                                                 "person_name", "consent")}
    body: dict[str, Any] = {"received_on": form["received_on"] or None, "content": form["content"] or None,
                            "response": form["response"] or None, "channel": form["channel"] or None,
                            "note": form["note"], "open_case": f.get("open_case") == "1"}
    if form["group"]:
        body["group"] = form["group"]
    if form["consent"]:
        body["consent"] = form["consent"]
    if form["person_name"]:
        body["person"] = {"name": form["person_name"]}
    form["open_case"] = body["open_case"]
    try:
        row = consultations.record_consultation(db.session, engine_env(), g.actor, body, now())
    except (Invalid, Forbidden) as exc:
        db.session.rollback()
        return _form_page(form, _error_text(exc), exc.status)
    flash(t("consultation_recorded"), "success")
    if row.case_id:
        return redirect(url_for("ui.case", case_id=row.case_id))
    return redirect(url_for("ui_scheme.consultations_page"))


@bp.route("/consultations")
@login_required
def consultations_page() -> Any:
    env = engine_env()
    a = request.args
    filters: dict[str, Any] = {k: a.get(k)[:64] for k in ("from", "to", "group", "channel", "content", "response")
                               if a.get(k)}
    try:
        rows, total = consultations.list_consultations(db.session, env, g.actor, {**filters, "limit": 200}, now())
        problem = None
    except Invalid as exc:
        db.session.rollback()
        rows, total, problem = [], 0, _error_text(exc)
    vocab = consultations.vocabulary(env)
    return _render("ui/consultations.html", active="consultations", rows=rows, total=total, filters=filters,
                   errors=problem or {}, content=vocab.all_content(), response=vocab.all_response(),
                   channels={c.code: c.name for c in vocab.channels}, org=env.org)


# ---------------------------------------------------------------- consultation days


@bp.route("/events")
@login_required
def events_page() -> Any:
    return _events()


def _events(form: dict[str, Any] | None = None, errors_: dict[str, str] | None = None, status: int = 200) -> Any:
    env = engine_env()
    vocab = consultations.vocabulary(env)
    return _render("ui/events.html", status, active="events", events=consultations.list_events(db.session),
                   form=form or {}, errors=errors_ or {}, groups=env.org.groups, professionals=vocab.professionals,
                   may_organise=statistics.may_read(g.actor) or "secretariat" in g.actor.roles)


@bp.route("/events", methods=["POST"])
@login_required
def event_create() -> Any:
    f = request.form
    form = {"title": f.get("title", ""), "held_on": f.get("held_on", ""), "place": f.get("place", ""),
            "groups": f.getlist("groups"), "professionals": f.getlist("professionals")}
    body = {**form, "held_on": form["held_on"] or None}
    try:
        row = consultations.create_event(db.session, engine_env(), g.actor, body, now())
    except (Invalid, Forbidden) as exc:
        db.session.rollback()
        return _events(form, _error_text(exc), exc.status)
    flash(t("event_created"), "success")
    return redirect(url_for("ui_scheme.event_page", event_id=row.id))


def _event(event_id: int, form: dict[str, Any] | None = None, errors_: dict[str, str] | None = None,
           status: int = 200) -> Any:
    env = engine_env()
    try:
        row = consultations.get_event(db.session, event_id)
    except DomainError:
        abort(404)
    vocab = consultations.vocabulary(env)
    mine = [grp for grp in _groups_of_actor() if grp.id in row.groups]
    return _render("ui/event.html", status, active="events", event=row, report=consultations.event_report(db.session, env, row),
                   kinds=vocab.event_kinds, professionals={p.code: p.name for p in vocab.professionals}, org=env.org,
                   my_groups=mine, form=form or {}, errors=errors_ or {})


@bp.route("/events/<id:event_id>")
@login_required
def event_page(event_id: int) -> Any:
    return _event(event_id)


@bp.route("/events/<id:event_id>", methods=["POST"])
@login_required
def event_walk_in(event_id: int) -> Any:
    f = request.form
    form = {"group": f.get("group", ""), "kinds": f.getlist("kinds"), "complex": f.get("complex") == "1",
            "follow_up": f.get("follow_up", "consultation")}
    body: dict[str, Any] = {"kinds": form["kinds"], "complex": form["complex"], "follow_up": form["follow_up"]}
    if form["group"]:
        body["group"] = form["group"]
    try:
        row = consultations.record_walk_in(db.session, engine_env(), g.actor, event_id, body, now())
    except (Invalid, Forbidden) as exc:
        db.session.rollback()
        return _event(event_id, form, _error_text(exc), exc.status)
    flash(t("event_walk_in_recorded"), "success")
    if row.case_id:
        return redirect(url_for("ui.case", case_id=row.case_id))
    return redirect(url_for("ui_scheme.event_page", event_id=event_id))


# ---------------------------------------------------------------- places


def _places(form: dict[str, Any] | None = None, errors_: dict[str, str] | None = None, status: int = 200) -> Any:
    env = engine_env()
    vocab = consultations.vocabulary(env)
    return _render("ui/places.html", status, active="places", places=places.list_places(db.session),
                   kinds={k.code: k.name for k in vocab.place_kinds}, form=form or {}, errors=errors_ or {},
                   may_keep=places.may_keep(g.actor, env))


@bp.route("/places")
@login_required
def places_page() -> Any:
    return _places()


@bp.route("/places", methods=["POST"])
@login_required
def place_add() -> Any:
    f = request.form
    form = {k: f.get(k, "") for k in ("name", "kind", "description", "capacity")}
    body: dict[str, Any] = {"name": form["name"], "kind": form["kind"], "description": form["description"]}
    if form["capacity"].strip():
        body["capacity"] = int(form["capacity"]) if form["capacity"].strip().isdigit() else form["capacity"]
    try:
        places.add_place(db.session, engine_env(), g.actor, body, now())
    except (Invalid, Forbidden) as exc:
        db.session.rollback()
        return _places(form, _error_text(exc), exc.status)
    flash(t("place_added"), "success")
    return redirect(url_for("ui_scheme.places_page"))


@bp.route("/places/<id:place_id>/active", methods=["POST"])
@login_required
def place_active(place_id: int) -> Any:
    try:
        places.change_place(db.session, engine_env(), g.actor, place_id, {"active": request.form.get("active") == "1"},
                            now())
    except (Invalid, Forbidden) as exc:
        db.session.rollback()
        return _places(None, _error_text(exc), exc.status)
    except DomainError:
        abort(404)
    return redirect(url_for("ui_scheme.places_page"))


# ---------------------------------------------------------------- statistics


def _fiscal_year() -> int | None:
    value = request.args.get("fiscal_year", "")
    return int(value) if value.isdigit() and len(value) == 4 else None


@bp.route("/statistics")
@login_required
def statistics_page() -> Any:
    env = engine_env()
    year = _fiscal_year()
    if year is None:
        first, _ = statistics.period(now=now())
        year = first.year
    try:
        report = statistics.statistics(db.session, env, g.actor, None, None, year, now())
    except Invalid:
        db.session.rollback()
        abort(404)
    this_year = statistics.period(now=now())[0].year
    n = statistics.names(env)
    charts = {
        "months": [m["month"] for m in report["consultations"]["by_month"]],
        "by_month": [m["total"] for m in report["consultations"]["by_month"]],
        "content_labels": [n["content"].get(k, k) for k in report["consultations"]["by_content"]],
        "content": list(report["consultations"]["by_content"].values()),
        "gap_labels": [n["gap"].get(k, k) for k in report["resource_gaps"]["by_kind"]],
        "gaps": list(report["resource_gaps"]["by_kind"].values()),
        "labels": {"by_month": t("chart_by_month"), "by_content": t("chart_by_content"), "gaps": t("chart_gaps")},
    }
    return _render("ui/statistics.html", active="statistics", report=report, rows=statistics.rows(report, env),
                   year=year, years=list(range(this_year, this_year - 6, -1)), charts=charts)


@bp.route("/statistics.csv")
@login_required
def statistics_csv() -> Any:
    env = engine_env()
    year = _fiscal_year()
    report = statistics.statistics(db.session, env, g.actor, None, None, year, now())
    name = f"statistics-{report['period']['from']}-{report['period']['to']}.csv"
    return Response(statistics.to_csv(report, env), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
