"""Consultations at any window (包括的相談支援) and consultation days (総合相談会).

A consultation is recorded whether or not a case opens: received on, window (group),
channel, one content and one response category (the window's own list from
`config/scheme.yaml`, else the default set), the person only with their consent. It may
open a multi-agency case (intake pre-filled, through `engine.casework.cases.start_case`) in the same
transaction, or link to a case the caller may see.

A consultation day is an event with its date, place, participating agencies and
professionals; a participating agency records its walk-ins there (several content kinds
each, 複合課題 flagged), and the event's report counts them in the source's shape
(相談来所者 14人（複合課題 8人）, 困窮 11件・仕事 1件 …). A walk-in's follow-up is a case or
a consultation of its own."""

from __future__ import annotations

from collections import Counter as Tally
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.casework import cases
from engine.casework.inputs import code, codes_list, field_error, only_fields, parse_date, text
from engine.casework.vocabulary import Vocabulary, codes, load_vocabulary
from engine.clock import city_today
from engine.env import Env
from engine.errors import Forbidden, Invalid, NotFound
from engine.models import Case, Consultation, ConsultationEvent, Group, User
from engine.ops.db import command
from engine.security import audit
from engine.security.access import require_case, sees_every_case
from engine.status import Role
from engine.workflow import limits

EVENT_CHANNEL = "event"
DEFAULT_CHANNEL = "visit_in"
MAX_LIST = 500
CONSENT_VALUES = ("given", "not_given", "unknown")


def vocabulary(env: Env) -> Vocabulary:
    return load_vocabulary(env.settings.config_dir)


def categories(env: Env, group: Any = None) -> dict[str, list[dict[str, str]]]:
    """The content and response categories of a window (the default set without one)."""
    if group is not None and (not isinstance(group, str) or group not in env.org.group_ids()):
        raise Invalid(f"グループ {group!r} はありません / unknown group {group!r}", {"group": "unknown group"})
    return vocabulary(env).categories(group).as_dict()


# ---------------------------------------------------------------- checks


def _window(session: Session, env: Env, actor: User, group: Any) -> str:
    """The window recording: the caller's group (their only one when not named)."""
    mine = actor.group_ids
    if group is None:
        if len(mine) != 1:
            raise field_error("group", "複数のグループに所属しています。受け付けた窓口を選んでください",
                           "you belong to several groups: say which window received it")
        return mine[0]
    if not isinstance(group, str) or session.get(Group, group) is None:
        raise field_error("group", f"グループ {group!r} はありません", f"unknown group {group!r}")
    if group not in mine and not (sees_every_case(actor, env.org) or Role.ADMIN in actor.roles):
        raise Forbidden(f"グループ {group!r} に所属していません / you are not a member of group {group!r}",
                        {"group": "not one of your groups"})
    return group


def _person(body: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(name, contact, consent): a person is kept only when they consented."""
    person, consent = body.get("person"), body.get("consent")
    if consent is not None and consent not in CONSENT_VALUES:
        raise field_error("consent", "同意は given, not_given, unknown のいずれかです",
                       "consent must be one of given, not_given, unknown")
    if person is None:
        return None, None, consent
    if not isinstance(person, dict) or set(person) - {"name", "contact"}:
        raise field_error("person", "person は {name, contact} です", "person must be an object with name and contact")
    if consent != "given":
        raise field_error("consent", "本人の情報は本人の同意がある場合のみ記録できます",
                       "the person may be recorded only with their consent (consent: given)")
    name = text(person.get("name"), "person.name", 200, required=True)
    contact = text(person.get("contact"), "person.contact", 200) or None
    return name, contact, consent


# ---------------------------------------------------------------- consultations


@command
def record_consultation(session: Session, env: Env, actor: User, body: Any, now: datetime) -> Consultation:
    """Record one consultation; with `open_case` it opens a multi-agency case (intake
    pre-filled) in the same transaction, with `case_id` it links to a case the caller sees."""
    only_fields(body, {"received_on", "content", "response", "group", "channel", "case_id", "open_case",
                           "person", "consent", "note"})
    limits.check_depth(body)
    received_on = parse_date(body.get("received_on"), "received_on")
    if received_on > city_today(now):
        raise field_error("received_on", "未来の日付は入力できません", "received_on must not be in the future")
    group = _window(session, env, actor, body.get("group"))
    vocab = vocabulary(env)
    cats = vocab.categories(group)
    content = code(body.get("content"), codes(cats.content), "content")
    response = code(body.get("response"), codes(cats.response), "response")
    channel = code(body.get("channel", DEFAULT_CHANNEL) or DEFAULT_CHANNEL, codes(vocab.channels), "channel")
    note = text(body.get("note"), "note")
    name, contact, consent = _person(body)
    open_case = body.get("open_case", False)
    if not isinstance(open_case, bool):
        raise field_error("open_case", "true か false です", "open_case must be true or false")
    case_id = body.get("case_id")
    if case_id is not None and open_case:
        raise field_error("case_id", "既存の案件へのつなぎと新しい案件の登録は同時にできません",
                       "give case_id or open_case, not both")
    row = _add(session, actor, group, received_on, channel, content, response, name, contact, consent, note,
               now)
    case = None
    if case_id is not None:
        case = require_case(session, actor, case_id, env.org, via=audit.Action.CONSULTATION_RECORD, now=now)
    elif open_case:
        content_name = next(c.name for c in cats.content if c.code == content)
        data: dict[str, Any] = {"summary": f"相談（{content_name}）からの案件。{note}".strip()[:4000]}
        if consent is not None:
            data["consent"] = consent
        case = cases.start_case(session, env, actor, "multi_agency", data, group, now, commit=False)
    if case is not None:
        row.case_id = case.id
    session.flush()
    audit.record(session, actor, audit.Action.CONSULTATION_RECORD, now, case,
                 {"consultation": row.id, "group": group, "content": content, "response": response,
                  "opened_case": bool(open_case)})
    session.commit()
    return row


def _add(session: Session, actor: User, group: str, received_on: date, channel: str, content: str, response: str,
         name: str | None, contact: str | None, consent: str | None, note: str, now: datetime,
         event_id: int | None = None, kinds: list[str] | None = None, complex_issues: bool = False) -> Consultation:
    row = Consultation(received_on=received_on, received_month=received_on.isoformat()[:7], group_id=group, channel=channel, content=content, response=response,
                       person_name=name, person_contact=contact, consent=consent,
                       consent_recorded_at=now if consent is not None else None, note=note, event_id=event_id,
                       kinds=kinds, complex_issues=complex_issues, created_by_id=actor.id, created_at=now)
    session.add(row)
    session.flush()
    return row


def _visible(actor: User, env: Env):  # noqa: ANN202
    """Consultations of the caller's windows; the secretariat and its lead see every window
    (an administrator, like for cases, only those of their own groups)."""
    if sees_every_case(actor, env.org):
        return Consultation.id.is_not(None)
    return Consultation.group_id.in_(actor.group_ids)


@command
def list_consultations(session: Session, env: Env, actor: User, filters: dict[str, Any], now: datetime,
                       ) -> tuple[list[Consultation], int]:
    """(page, total) of the consultations the caller may see, newest first; filters: from, to,
    group, channel, content, response, event; limit (≤ 500) and offset. An audited read."""
    limit = filters.get("limit", 100)
    offset = filters.get("offset", 0)
    limits.check_int(limit, "limit", 1, MAX_LIST)
    limits.check_int(offset, "offset")
    clauses = [_visible(actor, env)]
    start = parse_date(filters.get("from"), "from", required=False)
    end = parse_date(filters.get("to"), "to", required=False)
    if start is not None:
        clauses.append(Consultation.received_on >= start)
    if end is not None:
        clauses.append(Consultation.received_on <= end)
    if start is not None and end is not None and start > end:
        raise field_error("from", "開始日が終了日より後です", "from is after to")
    for name, column in (("group", Consultation.group_id), ("channel", Consultation.channel),
                         ("content", Consultation.content), ("response", Consultation.response)):
        value = filters.get(name)
        if value is not None:
            if not isinstance(value, str) or len(value) > 64:
                raise field_error(name, "値が正しくありません", f"{name} is not a valid code")
            clauses.append(column == value)
    if filters.get("event") is not None:
        limits.check_int(filters["event"], "event", 1)
        clauses.append(Consultation.event_id == filters["event"])
    total = session.scalar(select(func.count()).select_from(Consultation).where(*clauses)) or 0
    rows = list(session.scalars(select(Consultation).where(*clauses)
                                .order_by(Consultation.received_on.desc(), Consultation.id.desc())
                                .limit(limit).offset(offset)))
    if rows:
        audit.record(session, actor, audit.Action.CONSULTATION_LIST, now,
                     detail={"consultations": [r.id for r in rows][:100], "total": total})
    session.commit()
    return rows, total


# ---------------------------------------------------------------- consultation days


def _may_organise(actor: User, env: Env) -> bool:
    return bool(sees_every_case(actor, env.org) or {Role.SECRETARIAT, Role.ADMIN, Role.SUPERVISOR,
                                                     Role.COORDINATION_LEAD} & set(actor.roles))


@command
def create_event(session: Session, env: Env, actor: User, body: Any, now: datetime) -> ConsultationEvent:
    """A consultation day, set up by the secretariat (or a supervisor)."""
    if not _may_organise(actor, env):
        raise Forbidden("相談会を登録できるのは事務局と管理職です / only the secretariat or a supervisor may set up a "
                        "consultation day")
    only_fields(body, {"title", "held_on", "place", "groups", "professionals", "note"})
    vocab = vocabulary(env)
    row = ConsultationEvent(
        title=text(body.get("title"), "title", 200, required=True),
        held_on=parse_date(body.get("held_on"), "held_on"),
        place=text(body.get("place"), "place", 200, required=True),
        groups=codes_list(body.get("groups"), env.org.group_ids(), "groups"),
        professionals=codes_list(body.get("professionals"), codes(vocab.professionals), "professionals",
                                  required=False),
        note=text(body.get("note"), "note"), created_by_id=actor.id, created_at=now)
    session.add(row)
    session.flush()
    audit.record(session, actor, audit.Action.EVENT_CREATE, now, detail={"event": row.id, "held_on": str(row.held_on)})
    session.commit()
    return row


def list_events(session: Session, limit: int = 200, offset: int = 0) -> list[ConsultationEvent]:
    limits.check_int(limit, "limit", 1, MAX_LIST)
    limits.check_int(offset, "offset")
    return list(session.scalars(select(ConsultationEvent).order_by(ConsultationEvent.held_on.desc(),
                                                                    ConsultationEvent.id.desc())
                                .limit(limit).offset(offset)))


def get_event(session: Session, event_id: Any) -> ConsultationEvent:
    row = session.get(ConsultationEvent, limits.check_int(event_id, "event_id"))
    if row is None:
        raise NotFound("相談会が見つかりません / consultation day not found")
    return row


@command
def record_walk_in(session: Session, env: Env, actor: User, event_id: Any, body: Any, now: datetime
                   ) -> Consultation:
    """A walk-in at a consultation day, recorded by one of its participating agencies. Its
    follow-up: `follow_up: "case"` opens a multi-agency case; `"consultation"` leaves it a
    consultation to follow up at the window (the default)."""
    event = get_event(session, event_id)
    only_fields(body, {"group", "kinds", "complex", "content", "response", "follow_up", "person", "consent",
                           "note"})
    group = _window(session, env, actor, body.get("group"))
    if group not in event.groups:
        raise Forbidden(f"グループ {group} はこの相談会の参加機関ではありません / group {group} does not take part in "
                        "this consultation day", {"group": "not a participating agency"})
    vocab = vocabulary(env)
    kinds = codes_list(body.get("kinds"), codes(vocab.event_kinds), "kinds")
    complex_issues = body.get("complex", len(kinds) > 1)
    if not isinstance(complex_issues, bool):
        raise field_error("complex", "true か false です", "complex must be true or false")
    cats = vocab.categories(group)
    content = code(body.get("content", "other"), codes(cats.content), "content")
    response = code(body.get("response", "information"), codes(cats.response), "response")
    follow_up = body.get("follow_up", "consultation")
    if follow_up not in ("consultation", "case"):
        raise field_error("follow_up", "consultation か case です", "follow_up must be consultation or case")
    name, contact, consent = _person(body)
    note = text(body.get("note"), "note")
    row = _add(session, actor, group, event.held_on, EVENT_CHANNEL, content, response, name, contact, consent,
               note, now, event_id=event.id, kinds=kinds, complex_issues=complex_issues)
    case = None
    if follow_up == "case":
        names = "・".join(k.name for k in vocab.event_kinds if k.code in kinds)
        data: dict[str, Any] = {"summary": f"{event.title}（{event.held_on.isoformat()}）の相談（{names}）。{note}".strip()}
        if consent is not None:
            data["consent"] = consent
        case = cases.start_case(session, env, actor, "multi_agency", data, group, now, commit=False)
        row.case_id = case.id
    audit.record(session, actor, audit.Action.CONSULTATION_RECORD, now, case,
                 {"consultation": row.id, "event": event.id, "group": group, "kinds": kinds})
    session.commit()
    return row


def event_report(session: Session, env: Env, event: ConsultationEvent) -> dict[str, Any]:
    """Counts only: walk-ins, 複合課題, each content kind (a walk-in counts once per kind), per
    agency, follow-ups; `text` in the source's shape."""
    rows = session.execute(select(Consultation.kinds, Consultation.complex_issues, Consultation.group_id,
                                  Consultation.case_id)
                           .where(Consultation.event_id == event.id)).all()
    kinds: Tally[str] = Tally()
    by_group: Tally[str] = Tally()
    for row in rows:
        kinds.update(row.kinds or [])
        by_group[row.group_id] += 1
    vocab = vocabulary(env)
    visitors, complex_n = len(rows), sum(1 for r in rows if r.complex_issues)
    ordered = {k.code: kinds.get(k.code, 0) for k in vocab.event_kinds}
    shown = "・".join(f"{k.name} {ordered[k.code]}件" for k in vocab.event_kinds if ordered[k.code])
    return {
        "visitors": visitors, "complex": complex_n, "kinds": ordered, "by_group": dict(sorted(by_group.items())),
        "cases_opened": sum(1 for r in rows if r.case_id is not None),
        "text": f"相談来所者 {visitors}人（複合課題 {complex_n}人）" + (f"、{shown}" if shown else ""),
    }


def event_consultations(session: Session, event: ConsultationEvent) -> list[Consultation]:
    return list(session.scalars(select(Consultation).where(Consultation.event_id == event.id)
                                .order_by(Consultation.id)))


def case_consultations(session: Session, case: Case) -> list[Consultation]:
    return list(session.scalars(select(Consultation).where(Consultation.case_id == case.id)
                                .order_by(Consultation.id)))


__all__ = ["categories", "record_consultation", "list_consultations", "create_event", "list_events", "get_event",
           "record_walk_in", "event_report"]
