"""The scheme's pages: record a consultation at any window and list them, consultation
days (総合相談会) with their walk-ins and report, the participation places register, and
the statistics (tables, charts, CSV).

Like every page, each view parses the form, calls one domain function, and renders.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for

from engine import consultations, places
from engine.errors import DomainError, Forbidden, Invalid
from engine.reports import statistics
from web.extensions import db, engine_env, now
from web.ui import csrf, errors
from web.ui.auth import load_actor, login_required
from web.ui.i18n import MESSAGES, pick, t

bp = Blueprint("ui_scheme", __name__)
bp.before_request(load_actor)
bp.before_request(csrf.protect)
errors.install(bp)

MESSAGES.update({
    "nav_consultations": ("相談記録", "Consultations"),
    "nav_events": ("相談会", "Consultation days"),
    "nav_places": ("参加先", "Places"),
    "nav_statistics": ("統計", "Statistics"),
    "consultations_title": ("相談の記録", "Consultations"),
    "consultations_lead": ("どの窓口でも、案件にしない相談も含めて記録します。本人の情報は同意がある場合だけ残します。",
                           "Any window records its consultations, also those that open no case. The person is kept "
                           "only with their consent."),
    "consultation_new": ("相談を記録する", "Record a consultation"),
    "consultation_new_lead": ("受付日・窓口・相談方法・相談内容・対応を記録します。必要なら多機関協働事業の案件を登録します。",
                              "Record the date, window, channel, content and response; open a multi-agency case "
                              "if needed."),
    "consultation_received_on": ("受付日", "Received on"),
    "consultation_group": ("窓口", "Window"),
    "consultation_channel": ("相談方法", "Channel"),
    "consultation_content": ("相談内容", "Content"),
    "consultation_response": ("対応", "Response"),
    "consultation_note": ("メモ", "Note"),
    "consultation_person": ("相談者の氏名", "Person's name"),
    "consultation_person_help": ("本人が同意した場合だけ入力してください。", "Only if the person consented."),
    "consultation_consent": ("本人同意", "Consent"),
    "consultation_consent_none": ("記録しない", "Not recorded"),
    "consent_given": ("同意あり", "Given"),
    "consent_not_given": ("同意なし", "Not given"),
    "consent_unknown": ("不明", "Unknown"),
    "consultation_open_case": ("多機関協働事業の案件として登録する（相談・調整の内容を引き継ぎます）",
                               "Open a multi-agency case (the intake is pre-filled)"),
    "consultation_case": ("案件", "Case"),
    "consultation_submit": ("記録する", "Record"),
    "consultation_recorded": ("相談を記録しました。", "The consultation was recorded."),
    "consultations_none": ("該当する相談はありません。", "No consultations match."),
    "consultations_total": ("{n} 件", "{n} in all"),
    "filter": ("絞り込む", "Filter"),
    "filter_from": ("開始日", "From"),
    "filter_to": ("終了日", "To"),
    "any": ("すべて", "Any"),
    "events_title": ("相談会（総合相談会）", "Consultation days"),
    "events_lead": ("複数の機関と専門職（弁護士・ファイナンシャルプランナー等）が参加する相談会と、その来所者の記録です。",
                    "Consultation days with several agencies and professionals, and the walk-ins recorded there."),
    "event_new": ("相談会を登録する", "Set up a consultation day"),
    "event_title": ("名称", "Title"),
    "event_held_on": ("開催日", "Date"),
    "event_place": ("会場", "Place"),
    "event_groups": ("参加機関", "Participating agencies"),
    "event_professionals": ("専門職", "Professionals"),
    "event_submit": ("登録する", "Set up"),
    "event_created": ("相談会を登録しました。", "The consultation day was set up."),
    "events_none": ("登録された相談会はありません。", "No consultation days yet."),
    "event_report": ("相談会の報告", "Report"),
    "event_walk_in": ("来所者を記録する", "Record a walk-in"),
    "event_kinds": ("相談の内容（複数選択可）", "Content (choose all that apply)"),
    "event_complex": ("複合課題がある", "Several interlinked issues (複合課題)"),
    "event_follow_up": ("その後の対応", "Follow-up"),
    "follow_up_consultation": ("窓口で相談を続ける", "Continue as a consultation"),
    "follow_up_case": ("多機関協働事業の案件にする", "Open a multi-agency case"),
    "event_walk_in_submit": ("記録する", "Record"),
    "event_walk_in_recorded": ("来所者を記録しました。", "The walk-in was recorded."),
    "event_by_group": ("機関別の来所者", "Walk-ins by agency"),
    "count": ("件数", "Count"),
    "places_title": ("参加先の登録簿（参加支援）", "Participation places"),
    "places_lead": ("参加支援で本人をつなぐ活動・就労・地域の居場所です。", "Activities, workplaces and community places "
                    "a person can be matched to in participation support."),
    "place_name": ("名称", "Name"),
    "place_kind": ("種類", "Kind"),
    "place_description": ("内容", "Description"),
    "place_capacity": ("定員", "Capacity"),
    "place_active": ("受け入れ", "Taking people"),
    "place_active_yes": ("受け入れ中", "Yes"),
    "place_active_no": ("休止", "Paused"),
    "place_add": ("参加先を登録する", "Register a place"),
    "place_added": ("参加先を登録しました。", "The place was registered."),
    "place_pause": ("休止する", "Pause"),
    "place_resume": ("再開する", "Resume"),
    "places_none": ("登録された参加先はありません。", "No places yet."),
    "statistics_title": ("統計", "Statistics"),
    "statistics_lead": ("件数だけを集計します（個人情報は含みません）。年度は4月から翌年3月までです。",
                        "Figures only (no personal data). A fiscal year runs from April to March."),
    "statistics_fiscal_year": ("年度", "Fiscal year"),
    "statistics_fiscal_year_option": ("{y}年度", "FY{y}"),
    "statistics_show": ("表示する", "Show"),
    "statistics_csv": ("CSV をダウンロード（Excel 用）", "Download CSV (for Excel)"),
    "statistics_period": ("期間：{first} 〜 {last}", "Period: {first} to {last}"),
    "statistics_section": ("区分", "Section"),
    "statistics_item": ("項目", "Item"),
    "statistics_value": ("値", "Value"),
    "chart_by_month": ("月別の相談件数", "Consultations by month"),
    "chart_by_content": ("相談内容別の件数", "Consultations by content"),
    "chart_gaps": ("社会資源の不足（種類別）", "Social-resource gaps by kind"),
    "chart_fallback": ("グラフと同じ数値は下の表にあります。", "The table below has the same figures."),
    "input_error": ("入力内容に誤りがあります", "There is a problem with what was entered"),
})


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
