"""The city's statistics of the scheme, per period (a fiscal year runs April to March):
consultations by window, channel, content, response and month; multi-agency cases by the
図4 decision, the steps they entered, how long each step took (mean and median days), support
meetings and their 重層的支援会議 reviews, closures and their reasons; emergency cases and
how many went on to the six-step flow; outreach referrals and outcomes; participation
placements; social-resource gaps by kind.

Figures only: every query counts or measures, none reads a name, a summary or a form
answer. For supervisors, the secretariat, the coordination lead and administrators.

Each section is a handful of GROUP BY queries over indexes that cover them (migration
0017), so a fiscal year of a city-sized database answers in well under a second; a
median comes from a histogram of durations (tenths of a day) counted by the database,
never from fetching every row."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, select
from sqlalchemy.orm import Session

from engine.casework.inputs import field_error, parse_date
from engine.casework.vocabulary import load_vocabulary
from engine.clock import city_midnight, city_today
from engine.env import Env
from engine.errors import Forbidden
from engine.models import (
    Case,
    CaseLink,
    Consultation,
    HumanTask,
    MeetingReview,
    Place,
    Placement,
    ResourceGap,
)
from engine.security import audit
from engine.status import PlacementStatus, Role, TaskState

ROLES = frozenset({Role.SUPERVISOR, Role.SECRETARIAT, Role.COORDINATION_LEAD, Role.ADMIN})
# The six steps of the multi-agency flow (図2), in order, and their Japanese names.
SIX_STEPS: dict[str, str] = {
    "intake": "1. 相談・調整", "assessment": "2. アセスメント", "plan": "3. 課題整理・支援方針の作成",
    "meeting": "4. 支援会議", "monitoring": "5. モニタリング", "closure": "6. 終結",
}
DECISIONS = ("eligible", "not_eligible", "consult_only")
MAX_YEARS = 10


def may_read(actor: Any) -> bool:
    return bool(ROLES & set(actor.roles))


def period(start: Any = None, end: Any = None, fiscal_year: Any = None, now: datetime | None = None
           ) -> tuple[date, date]:
    """(first day, last day) of the period asked for: `fiscal_year` YYYY (April YYYY to March
    YYYY+1), or `from` and `to` (inclusive); neither gives the current fiscal year."""
    if fiscal_year is not None:
        if start is not None or end is not None:
            raise field_error("fiscal_year", "fiscal_year と from/to は同時に指定できません",
                              "give fiscal_year or from and to, not both")
        year = fiscal_year
        if isinstance(year, str) and year.isdigit() and len(year) == 4:
            year = int(year)
        if isinstance(year, bool) or not isinstance(year, int) or not 2000 <= year <= 2100:
            raise field_error("fiscal_year", "年度は 2000〜2100 の西暦4桁です", "fiscal_year must be a year from 2000 to 2100")
        return date(year, 4, 1), date(year + 1, 3, 31)
    if start is None and end is None:
        today = city_today(now or datetime.now().astimezone())
        year = today.year if today.month >= 4 else today.year - 1
        return date(year, 4, 1), date(year + 1, 3, 31)
    first = parse_date(start, "from")
    last = parse_date(end, "to")
    if first > last:
        raise field_error("to", "終了日が開始日より前です", "to is before from")
    if (last - first).days > 366 * MAX_YEARS:
        raise field_error("to", f"期間は {MAX_YEARS} 年までです", f"the period may be at most {MAX_YEARS} years")
    return first, last


def months(first: date, last: date) -> list[str]:
    out, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _month_of_instant(session: Session, column: Any) -> Any:
    """The city's month of a UTC instant."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("Asia/Tokyo", func.timezone("UTC", column)), "YYYY-MM")
    return func.strftime("%Y-%m", column, "+9 hours")


def _days(session: Session, start: Any, end: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start) / 86400.0
    return func.julianday(end) - func.julianday(start)


def _between(column: Any, lo: datetime, hi: datetime) -> ColumnElement[bool]:
    return and_(column >= lo, column < hi)


def _counts(rows: Any) -> dict[str, int]:
    return {str(k): int(n) for k, n in sorted(rows, key=lambda r: str(r[0])) if k is not None}


def _median(histogram: dict[int, int]) -> float | None:
    """Median of values given as {tenths: count}."""
    total = sum(histogram.values())
    if not total:
        return None
    ordered = sorted(histogram.items())

    def nth(i: int) -> int:
        seen = 0
        for value, n in ordered:
            seen += n
            if i < seen:
                return value
        return ordered[-1][0]

    mid = total // 2
    value = nth(mid) if total % 2 else (nth(mid - 1) + nth(mid)) / 2
    return round(value / 10, 1)


# ---------------------------------------------------------------- sections


def _consultations(session: Session, first: date, last: date) -> dict[str, Any]:
    columns = (Consultation.received_month, Consultation.group_id, Consultation.channel, Consultation.content,
               Consultation.response)
    where = [Consultation.received_month >= first.isoformat()[:7], Consultation.received_month <= last.isoformat()[:7]]
    # Only a period that cuts a month needs the day (read from the same index).
    if first.day != 1:
        where.append(Consultation.received_on >= first)
    if (last + timedelta(days=1)).day != 1:
        where.append(Consultation.received_on <= last)
    rows = session.execute(select(*columns, func.count()).where(*where).group_by(*columns)).all()
    by: dict[str, dict[str, int]] = {k: defaultdict(int) for k in ("content", "response", "window", "channel", "month")}
    by_month_content: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    total = 0
    for m, group, channel, content, response, n in rows:
        total += n
        by["content"][content] += n
        by["response"][response] += n
        by["window"][group] += n
        by["channel"][channel] += n
        by["month"][m] += n
        by_month_content[m][content] += n
    return {
        "total": total,
        "by_content": dict(sorted(by["content"].items())),
        "by_response": dict(sorted(by["response"].items())),
        "by_window": dict(sorted(by["window"].items())),
        "by_channel": dict(sorted(by["channel"].items())),
        "by_month": [{"month": m, "total": by["month"].get(m, 0), "by_content": dict(sorted(by_month_content[m].items()))}
                     for m in months(first, last)],
    }


def _cases(session: Session, lo: datetime, hi: datetime) -> dict[str, Any]:
    ma = Case.process_key == "multi_agency"
    opened = session.scalar(select(func.count()).select_from(Case).where(ma, _between(Case.created_at, lo, hi))) or 0
    decided = session.execute(select(Case.decision_result, Case.decision_rule, func.count())
                              .where(ma, _between(Case.decided_at, lo, hi))
                              .group_by(Case.decision_result, Case.decision_rule)).all()
    by_decision = dict.fromkeys(DECISIONS, 0)
    by_rule: dict[str, int] = defaultdict(int)
    for result, rule, n in decided:
        by_decision[result] = by_decision.get(result, 0) + n
        by_rule[rule or "none"] += n
    closures = _counts(session.execute(select(Case.closure_reason, func.count())
                                       .where(ma, _between(Case.completed_at, lo, hi))
                                       .group_by(Case.closure_reason)).all())
    return {"opened": opened, "by_decision": by_decision, "by_rule": dict(sorted(by_rule.items())),
            "steps": _steps(session, "multi_agency", SIX_STEPS, lo, hi),
            "closed": sum(closures.values()), "closures": closures}


def _steps(session: Session, process: str, steps: dict[str, str], lo: datetime, hi: datetime) -> list[dict[str, Any]]:
    """Per step: tasks entered in the period, distinct cases, and of those the completed
    ones' mean and median days (tasks cancelled by the flow moving on are not counted).
    One pass over the index gives entries, the histogram and the sums (an open task's
    bucket is NULL); a second counts the distinct cases."""
    where = (HumanTask.process_key == process, _between(HumanTask.created_at, lo, hi), HumanTask.step.in_(steps))
    done_days = case((HumanTask.state == TaskState.COMPLETED, _days(session, HumanTask.created_at, HumanTask.completed_at)))
    tenths = func.round(done_days * 10).label("tenths")
    histogram: dict[str, dict[int, int]] = defaultdict(dict)
    entered: dict[str, int] = defaultdict(int)
    sums: dict[str, tuple[int, float]] = {}
    for step, bucket, n, total in session.execute(
            select(HumanTask.step, tenths, func.count(), func.sum(done_days)).where(*where)
            .group_by(HumanTask.step, tenths)).all():
        entered[step] += n
        if bucket is None:
            continue
        histogram[step][int(bucket)] = n
        done, acc = sums.get(step, (0, 0.0))
        sums[step] = (done + n, acc + float(total or 0))
    cases = dict(session.execute(select(HumanTask.step, func.count(HumanTask.case_id.distinct()))
                                 .where(*where).group_by(HumanTask.step)).all())
    out = []
    for step, name in steps.items():
        done, acc = sums.get(step, (0, 0.0))
        out.append({"step": step, "name": name, "entered": entered.get(step, 0), "cases": cases.get(step, 0),
                    "completed": done, "mean_days": round(acc / done, 1) if done else None,
                    "median_days": _median(histogram[step])})
    return out


def _meetings(session: Session, lo: datetime, hi: datetime) -> dict[str, Any]:
    # Only a completed task has completed_at: the count reads ix_human_tasks_completed alone.
    held = session.scalar(select(func.count()).select_from(HumanTask).where(
        HumanTask.process_key == "multi_agency", HumanTask.step == "meeting",
        _between(HumanTask.completed_at, lo, hi))) or 0
    reviews: dict[str, dict[str, int]] = defaultdict(dict)
    for stage, result, n in session.execute(select(MeetingReview.stage, MeetingReview.result, func.count())
                                            .where(_between(MeetingReview.recorded_at, lo, hi))
                                            .group_by(MeetingReview.stage, MeetingReview.result)).all():
        reviews[stage][result] = n
    return {"support_meetings": held,
            "reviews": {"plan": dict(sorted(reviews["plan"].items())), "closure": dict(sorted(reviews["closure"].items()))}}


def _handed(session: Session, process: str, lo: datetime, hi: datetime) -> tuple[int, int, dict[str, int]]:
    """(opened in the period, of those handed over to the six-step flow, closures by reason)."""
    of = Case.process_key == process
    opened = session.scalar(select(func.count()).select_from(Case).where(of, _between(Case.created_at, lo, hi))) or 0
    linked = exists().where(CaseLink.from_case_id == Case.id, CaseLink.kind == "handover")
    handed = session.scalar(select(func.count()).select_from(Case)
                            .where(of, _between(Case.created_at, lo, hi), linked)) or 0
    closures = _counts(session.execute(select(Case.closure_reason, func.count())
                                       .where(of, _between(Case.completed_at, lo, hi))
                                       .group_by(Case.closure_reason)).all())
    return opened, handed, closures


def _emergency(session: Session, lo: datetime, hi: datetime) -> dict[str, Any]:
    opened, handed, closures = _handed(session, "emergency", lo, hi)
    return {"opened": opened, "to_six_step_flow": handed, "closures": closures}


def _outreach(session: Session, lo: datetime, hi: datetime) -> dict[str, Any]:
    opened, handed, closures = _handed(session, "outreach", lo, hi)
    return {"referrals": opened, "to_six_step_flow": handed, "outcomes": closures}


def _participation(session: Session, lo: datetime, hi: datetime) -> dict[str, Any]:
    of = Case.process_key == "participation"
    opened = session.scalar(select(func.count()).select_from(Case).where(of, _between(Case.created_at, lo, hi))) or 0
    started = _counts(session.execute(select(Place.kind, func.count()).select_from(Placement).join(Place, Place.id == Placement.place_id)
                                      .where(_between(Placement.started_at, lo, hi)).group_by(Place.kind)).all())
    ended = _counts(session.execute(select(Placement.status, func.count())
                                    .where(_between(Placement.ended_at, lo, hi)).group_by(Placement.status)).all())
    on_trial = session.scalar(select(func.count()).select_from(Placement).where(
        Placement.status == PlacementStatus.TRIAL, Placement.started_at < hi)) or 0
    return {"cases": opened, "placements": sum(started.values()), "placements_by_kind": started,
            "settled": ended.get(PlacementStatus.SETTLED, 0), "rematched": ended.get(PlacementStatus.REMATCHED, 0),
            "ended": ended.get(PlacementStatus.ENDED, 0), "on_trial": on_trial}


def _resource_gaps(session: Session, lo: datetime, hi: datetime, first: date, last: date) -> dict[str, Any]:
    month = _month_of_instant(session, ResourceGap.recorded_at).label("month")
    rows = session.execute(select(ResourceGap.kind, month, func.count())
                           .where(_between(ResourceGap.recorded_at, lo, hi))
                           .group_by(ResourceGap.kind, month)).all()
    by_kind: dict[str, int] = defaultdict(int)
    by_month: dict[str, int] = defaultdict(int)
    for kind, m, n in rows:
        by_kind[kind] += n
        by_month[m] += n
    return {"total": sum(by_kind.values()), "by_kind": dict(sorted(by_kind.items())),
            "by_month": [{"month": m, "total": by_month.get(m, 0)} for m in months(first, last)]}


# ---------------------------------------------------------------- the report


def compute(session: Session, first: date, last: date) -> dict[str, Any]:
    """Every figure of the period [first, last] (city dates, inclusive)."""
    lo, hi = city_midnight(first), city_midnight(last + timedelta(days=1))
    return {
        "period": {"from": first.isoformat(), "to": last.isoformat()},
        "consultations": _consultations(session, first, last),
        "cases": _cases(session, lo, hi),
        "meetings": _meetings(session, lo, hi),
        "emergency": _emergency(session, lo, hi),
        "outreach": _outreach(session, lo, hi),
        "participation": _participation(session, lo, hi),
        "resource_gaps": _resource_gaps(session, lo, hi, first, last),
    }


def statistics(session: Session, env: Env, actor: Any, start: Any, end: Any, fiscal_year: Any,
               now: datetime) -> dict[str, Any]:
    """The report for the period asked for; the read is audited (figures only in it)."""
    if not may_read(actor):
        raise Forbidden("統計を見られるのは管理職・事務局・連携責任者・管理者です / statistics are for supervisors, the "
                        "secretariat, the coordination lead and administrators")
    first, last = period(start, end, fiscal_year, now)
    report = compute(session, first, last)
    audit.record(session, actor, audit.Action.STATISTICS_READ, now, detail=report["period"])
    session.commit()
    return report


def names(env: Env) -> dict[str, dict[str, str]]:
    """Japanese names of every code the report uses, for tables, charts and the CSV."""
    vocab = load_vocabulary(env.settings.config_dir)
    return {
        "content": vocab.all_content(), "response": vocab.all_response(),
        "channel": {c.code: c.name for c in vocab.channels},
        "window": {g.id: g.name for g in env.org.groups},
        "gap": {c.code: c.name for c in vocab.gap_kinds},
        "place": {c.code: c.name for c in vocab.place_kinds},
        "decision": {"eligible": "対象", "not_eligible": "対象外", "consult_only": "対象外（連携調整の相談は可）"},
        "reason": {"established": "支援が定着", "transferred": "他の支援につないだ", "other": "その他", "returned": "つなぎ元に戻す",
                   "handed_over": "多機関協働事業へ引継ぎ", "completed": "終了", "consultation": "相談につないだ",
                   "unreachable": "接触できず", "not_needed": "支援不要", "moved": "転居", "other_agency": "他機関が対応",
                   "settled": "定着", "ended": "終了", "resolved": "解決"},
        "review": {"appropriate": "支援プランは適切", "revise": "修正して適切", "not_appropriate": "再検討が必要",
                   "approved": "終結を承認", "continue": "支援の継続が必要"},
    }


def rows(report: dict[str, Any], env: Env) -> list[tuple[str, str, str, Any]]:
    """(区分, 項目, コード, 値) rows of the report: the CSV and the page's tables."""
    n = names(env)
    out: list[tuple[str, str, str, Any]] = []
    c = report["consultations"]
    out.append(("相談", "相談件数（合計）", "total", c["total"]))
    for key, label, kind in (("by_content", "相談内容", "content"), ("by_response", "対応", "response"),
                             ("by_window", "窓口", "window"), ("by_channel", "相談方法", "channel")):
        for code, value in c[key].items():
            out.append((f"相談：{label}", n[kind].get(code, code), code, value))
    for m in c["by_month"]:
        out.append(("相談：月別", m["month"], m["month"], m["total"]))
    k = report["cases"]
    out.append(("多機関協働事業", "新規案件", "opened", k["opened"]))
    for code, value in k["by_decision"].items():
        out.append(("多機関協働事業：図4の判定", n["decision"].get(code, code), code, value))
    for code, value in k["by_rule"].items():
        out.append(("多機関協働事業：図4の基準（列）", code, code, value))
    for s in k["steps"]:
        out.append(("多機関協働事業：各段階に入った件数", s["name"], s["step"], s["entered"]))
        out.append(("多機関協働事業：各段階の平均日数", s["name"], s["step"], s["mean_days"] if s["mean_days"] is not None else ""))
        out.append(("多機関協働事業：各段階の日数の中央値", s["name"], s["step"],
                    s["median_days"] if s["median_days"] is not None else ""))
    out.append(("多機関協働事業", "終結件数", "closed", k["closed"]))
    for code, value in k["closures"].items():
        out.append(("多機関協働事業：終結の理由", n["reason"].get(code, code), code, value))
    mt = report["meetings"]
    out.append(("支援会議", "開催件数", "support_meetings", mt["support_meetings"]))
    for stage, label in (("plan", "重層的支援会議：支援プランの適切性"), ("closure", "重層的支援会議：終結時の評価")):
        for code, value in mt["reviews"][stage].items():
            out.append((label, n["review"].get(code, code), code, value))
    e = report["emergency"]
    out.append(("緊急対応", "緊急対応の件数", "opened", e["opened"]))
    out.append(("緊急対応", "多機関協働事業へ引継ぎ", "to_six_step_flow", e["to_six_step_flow"]))
    o = report["outreach"]
    out.append(("アウトリーチ", "依頼件数", "referrals", o["referrals"]))
    out.append(("アウトリーチ", "多機関協働事業へつないだ", "to_six_step_flow", o["to_six_step_flow"]))
    for code, value in o["outcomes"].items():
        out.append(("アウトリーチ：結果", n["reason"].get(code, code), code, value))
    p = report["participation"]
    for key, label in (("cases", "参加支援の案件"), ("placements", "参加先での試行開始"), ("settled", "定着"),
                       ("rematched", "別の参加先へ"), ("ended", "終了"), ("on_trial", "試行中")):
        out.append(("参加支援", label, key, p[key]))
    for code, value in p["placements_by_kind"].items():
        out.append(("参加支援：参加先の種類", n["place"].get(code, code), code, value))
    g = report["resource_gaps"]
    out.append(("社会資源の不足", "合計", "total", g["total"]))
    for code, value in g["by_kind"].items():
        out.append(("社会資源の不足：種類", n["gap"].get(code, code), code, value))
    return out


def to_csv(report: dict[str, Any], env: Env) -> bytes:
    """UTF-8 with a BOM (Excel reads it as UTF-8), Japanese headers."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["期間（開始）", "期間（終了）", "区分", "項目", "コード", "値"])
    for section, item, code, value in rows(report, env):
        writer.writerow([report["period"]["from"], report["period"]["to"], section, item, code, value])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
