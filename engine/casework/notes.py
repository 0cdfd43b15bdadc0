"""Support records (支援経過記録): notes on a case at any time, not only at its steps — a visit,
a phone call, an office visit, a meeting — with when it happened, the text and its author.

Read and written under the case's access rules (engine.security.access: the case's own 404 for whoever
may not see it); every read is audited, a list read as one record. Its author may change the
text for EDIT_WINDOW after it was recorded; each change keeps the earlier text as a revision
(who, when), which everyone who may read the note may read too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.env import Env
from engine.errors import Conflict, Forbidden, Invalid, NotFound
from engine.models import Case, CaseNote, CaseNoteRevision, User
from engine.ops.db import command
from engine.security import audit
from engine.security.access import require_case
from engine.status import NoteKind
from engine.workflow import limits

# What each kind is called: Japanese (as shown), English.
KIND_LABELS: dict[str, tuple[str, str]] = {
    NoteKind.VISIT: ("訪問", "Home visit"),
    NoteKind.PHONE: ("電話", "Phone call"),
    NoteKind.OFFICE_VISIT: ("来所", "Office visit"),
    NoteKind.MEETING: ("会議", "Meeting"),
    NoteKind.OTHER: ("その他", "Other"),
}
EDIT_WINDOW = timedelta(hours=24)
MAX_TEXT = 10_000
# `occurred_at` may be this much ahead of the server's clock (a device's clock a little fast),
# and this far back (a record written up late, not a typo of the year).
FUTURE_TOLERANCE = timedelta(minutes=5)
PAST_LIMIT = timedelta(days=366)
PAGE = 50
PAGE_MAX = 200
# Edits one note may have: each keeps a revision, and the list shows them all.
MAX_REVISIONS = 50


@dataclass(frozen=True)
class NotePage:
    notes: list[CaseNote]
    revisions: dict[int, list[CaseNoteRevision]]  # note id → its earlier texts, oldest first
    total: int


def _kind(value: Any) -> str:
    kinds = [k.value for k in NoteKind]
    if not isinstance(value, str) or value not in kinds:
        raise Invalid(f"kind は {', '.join(kinds)} のいずれかです / kind must be one of {', '.join(kinds)}",
                      {"kind": f"one of {', '.join(kinds)}"})
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("記録の内容を入力してください / text is required", {"text": "required"})
    if len(value) > MAX_TEXT:
        raise Invalid(f"記録の内容は {MAX_TEXT} 文字までです / text must be at most {MAX_TEXT} characters",
                      {"text": f"at most {MAX_TEXT} characters"})
    return value.strip()


def _occurred_at(value: Any, now: datetime) -> datetime:
    if value is None:
        return now
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise Invalid("occurred_at はタイムゾーン付きの日時です / occurred_at must be a date-time with a time zone",
                      {"occurred_at": "date-time with a time zone"})
    limits.check_instant(value, "occurred_at")
    if value > now + FUTURE_TOLERANCE:
        raise Invalid("occurred_at に未来の日時は指定できません / occurred_at must not be in the future",
                      {"occurred_at": "not in the future"})
    if value < now - PAST_LIMIT:
        raise Invalid(f"occurred_at は {PAST_LIMIT.days} 日前までです / occurred_at must be within the last "
                      f"{PAST_LIMIT.days} days", {"occurred_at": f"within the last {PAST_LIMIT.days} days"})
    return value


@command
def add_note(session: Session, env: Env, actor: User, case_id: Any, kind: Any, text: Any,
             occurred_at: Any, now: datetime) -> CaseNote:
    """Record a support record on the case; bad input is refused naming the field."""
    case = require_case(session, actor, case_id, env.org, via=audit.Action.NOTE_CREATE, now=now)
    note = CaseNote(case_id=case.id, kind=_kind(kind), text=_text(text), occurred_at=_occurred_at(occurred_at, now),
                    recorded_at=now, author_id=actor.id)
    session.add(note)
    session.flush()
    audit.record(session, actor, audit.Action.NOTE_CREATE, now, case, {"note": note.id, "kind": note.kind})
    session.commit()
    return note


def may_edit(actor: User, note: CaseNote, now: datetime) -> bool:
    """Only its author, and only within EDIT_WINDOW of when it was recorded."""
    return note.author_id == actor.id and now - note.recorded_at <= EDIT_WINDOW


def _note_of(session: Session, case: Case, note_id: Any) -> CaseNote:
    limits.check_int(note_id, "note_id", 1)
    note = session.get(CaseNote, note_id)
    if note is None or note.case_id != case.id:
        raise NotFound("記録が見つかりません / note not found")
    return note


@command
def edit_note(session: Session, env: Env, actor: User, case_id: Any, note_id: Any, text: Any,
              now: datetime) -> CaseNote:
    """Change a note's text, keeping the earlier one as a revision. Refused (403) to anyone but its
    author, and to the author after EDIT_WINDOW."""
    case = require_case(session, actor, case_id, env.org, via=audit.Action.NOTE_EDIT, now=now)
    note = _note_of(session, case, note_id)
    if note.author_id != actor.id:
        raise Forbidden("記録を修正できるのは記録した本人だけです / only the author of a note may edit it")
    if now - note.recorded_at > EDIT_WINDOW:
        raise Forbidden(f"記録の修正は記録から {int(EDIT_WINDOW.total_seconds() // 3600)} 時間以内に限られます / a note "
                        f"may be edited only within {int(EDIT_WINDOW.total_seconds() // 3600)} hours of recording it")
    new_text = _text(text)
    if new_text == note.text:
        return note
    edits = session.scalar(select(func.count()).select_from(CaseNoteRevision)
                           .where(CaseNoteRevision.note_id == note.id)) or 0
    if edits >= MAX_REVISIONS:
        raise Conflict(f"この記録はこれ以上修正できません（{MAX_REVISIONS} 回まで）/ this note was edited "
                       f"{MAX_REVISIONS} times, the most it may be")
    session.add(CaseNoteRevision(note_id=note.id, text=note.text, edited_by_id=actor.id, edited_at=now))
    note.text = new_text
    note.edited_at = now
    session.flush()
    audit.record(session, actor, audit.Action.NOTE_EDIT, now, case, {"note": note.id})
    session.commit()
    return note


def revisions_of(session: Session, note: CaseNote) -> list[CaseNoteRevision]:
    """The note's earlier texts, oldest first (of a note the caller was just let read or edit)."""
    return _revisions(session, [note])[note.id]


def _revisions(session: Session, notes: list[CaseNote]) -> dict[int, list[CaseNoteRevision]]:
    out: dict[int, list[CaseNoteRevision]] = {n.id: [] for n in notes}
    edited = [n.id for n in notes if n.edited_at is not None]
    if edited:
        for rev in session.scalars(select(CaseNoteRevision).where(CaseNoteRevision.note_id.in_(edited))
                                   .order_by(CaseNoteRevision.id)):
            out[rev.note_id].append(rev)
    return out


def list_notes(session: Session, env: Env, actor: User, case_id: Any, now: datetime, *, limit: Any = PAGE,
               offset: Any = 0) -> NotePage:
    """A page of the case's notes, newest first (by when they happened), with their revisions
    and the total; the read is one audit record (committed)."""
    limit = limits.check_int(limit, "limit", 1, PAGE_MAX)
    offset = limits.check_int(offset, "offset", 0)
    case = require_case(session, actor, case_id, env.org, via=audit.Action.NOTE_LIST, now=now)
    return _page(session, actor, case, now, limit, offset)


def _page(session: Session, actor: User, case: Case, now: datetime, limit: int, offset: int,
          also: list[CaseNote] = ()) -> NotePage:
    notes = list(session.scalars(select(CaseNote).where(CaseNote.case_id == case.id)
                                 .order_by(CaseNote.occurred_at.desc(), CaseNote.id.desc())
                                 .limit(limit).offset(offset)))
    total = session.scalar(select(func.count()).select_from(CaseNote).where(CaseNote.case_id == case.id)) or 0
    revisions = _revisions(session, notes)
    audit.record(session, actor, audit.Action.NOTE_LIST, now, case,
                 {"notes": sorted({n.id for n in [*notes, *also]}), "offset": offset})
    session.commit()
    return NotePage(notes, revisions, total)


def notes_for_case_page(session: Session, actor: User, case: Case, now: datetime, *, offset: Any = 0,
                        since: datetime | None = None, until: datetime | None = None,
                        ) -> tuple[NotePage, list[CaseNote]]:
    """What the case page shows of a case the actor was just let see (engine.casework.cases.get_case):
    a page of the notes list, and the notes whose time falls in the timeline's window
    [since, until] (None: open), at most PAGE_MAX. One audit record for both."""
    offset = limits.check_int(offset, "notes_offset", 0)
    stmt = select(CaseNote).where(CaseNote.case_id == case.id)
    if since is not None:
        stmt = stmt.where(CaseNote.occurred_at >= since)
    if until is not None:
        stmt = stmt.where(CaseNote.occurred_at <= until)
    window = list(session.scalars(stmt.order_by(CaseNote.occurred_at.desc(), CaseNote.id.desc()).limit(PAGE_MAX)))
    return _page(session, actor, case, now, PAGE, offset, window), window
