"""Finding a case by what a caseworker remembers of it: its number, its summary, the names and
kana of its household. Owns the normalised text each case is found by (`cases.search_text`)
and the normalisation both the stored text and a query go through, so that 「やまだ」 finds
ヤマダ, ﾔﾏﾀﾞ and ＹＡＭＡＤＡ finds yamada."""

from __future__ import annotations

import unicodedata

from sqlalchemy import ColumnElement, and_, func, literal_column, select, update
from sqlalchemy.orm import Session

from engine.models import Case, HouseholdMember

# Katakana ァ..ヶ (U+30A1..U+30F6) map onto hiragana ぁ..ゖ (U+3041..U+3096) at a fixed offset.
_KATAKANA_TO_HIRAGANA = {c: c - 0x60 for c in range(0x30A1, 0x30F7)}


def normalize(text: str) -> str:
    """NFKC (full-width Latin and digits and half-width kana become their usual forms, ｶﾞ → ガ),
    katakana → hiragana, case folded, runs of white space one space."""
    folded = unicodedata.normalize("NFKC", text or "").translate(_KATAKANA_TO_HIRAGANA).casefold()
    return " ".join(folded.split())


def like_pattern(term: str) -> str:
    """A LIKE pattern (escape character backslash) matching `term` anywhere, its % and _ literal."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matching(dialect: str, terms: list[str]) -> ColumnElement[bool]:
    """A WHERE clause over Case keeping the cases whose search text holds every one of `terms`
    (normalised).

    PostgreSQL: `LIKE '%term%'`, which the trigram index (ix_cases_search_text, pg_trgm) answers.
    SQLite: the terms are looked for in the search text's index alone (a scan of short entries,
    `instr`: a plain substring test, cheaper than LIKE's pattern matcher) and the cases found
    are then read by rowid: testing the table's rows instead would read each case's kilobytes
    of workflow state, stored before the search text."""
    if dialect == "sqlite":
        found = select(literal_column("rowid")).select_from(Case.__table__).where(
            *[func.instr(Case.search_text, term) > 0 for term in terms])
        return literal_column("cases.rowid").in_(found)
    return and_(*[Case.search_text.like(like_pattern(term), escape="\\") for term in terms])


def case_text(number: str, summary: str, members: list[tuple[str, str]]) -> str:
    """The search text of a case from its parts; members as (name, kana)."""
    parts = [number, summary or ""] + [f"{name} {kana}" for name, kana in members]
    return normalize(" ".join(parts))


def current_text(session: Session, case: Case) -> str:
    """The case's search text from its number, summary (as the object holds it) and household."""
    members = session.execute(select(HouseholdMember.name, HouseholdMember.kana)
                              .where(HouseholdMember.case_id == case.id)
                              .order_by(HouseholdMember.position)).all()
    return case_text(case.number, case.summary, [(m.name, m.kana) for m in members])


def reindex(session: Session, case: Case) -> None:
    """Recompute the case's search text, in the caller's transaction: called by whatever changes
    the household (a summary change sets it with the case's own update, engine.writes)."""
    text = current_text(session, case)
    # A plain UPDATE, not an attribute change: it must not bump the case's version (an open
    # task's claim or a concurrent step would then conflict with an edit of the household).
    session.execute(update(Case).where(Case.id == case.id).values(search_text=text)
                    .execution_options(synchronize_session=False))
