"""Finding a case by what a caseworker remembers of it: its number, its summary, the names and
kana of its household. Owns the normalised text each case is found by (`cases.search_text`),
the normalisation both the stored text and a query go through, so that 「やまだ」 finds
ヤマダ, ﾔﾏﾀﾞ and ＹＡＭＡＤＡ finds yamada, and the search's own index of that text (case_search,
case_search_grams), kept in the same transaction as the text by `store`, by which a query is
answered from the cases holding its rarest piece."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import ColumnElement, delete, false, func, insert, literal, select, update
from sqlalchemy.orm import Session

from engine.models import Case, CaseSearchGram, CaseSearchText, HouseholdMember

# A query is answered from the cases holding its rarest piece: each piece's cases are counted up
# to this many (a capped count reads at most that many index entries), which tells a rare piece
# from a common one without counting the common ones through.
RARE_CAP = 2000
# The pieces of a run of digits: its substrings of these lengths. Every pair of digits is common
# (a case number holds ten of them), a run of three to six is rare enough to find a number by.
DIGIT_PIECES = range(3, 7)

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


# ASCII digits only: NFKC has made full-width digits ASCII, and the other scripts' digits
# (str.isdigit is true of them) are rare enough to be indexed by pairs like any character.
_DIGIT_RUN = re.compile(r"[0-9]+")


def _is_digit(c: str) -> bool:
    return "0" <= c <= "9"


def grams(text: str) -> set[str]:
    """The pieces a normalised text is indexed by, word by word (none across a space): every pair
    of adjacent characters that are not both digits, and every substring of three to six
    characters of a run of digits. Each is a substring of the text, and every piece of a word
    that occurs in the text is one of the text's pieces: what lets a query word be looked up by
    any one of its pieces."""
    out: set[str] = set()
    for word in text.split():
        out.update(word[i:i + 2] for i in range(len(word) - 1)
                   if not (_is_digit(word[i]) and _is_digit(word[i + 1])))
        for run in _DIGIT_RUN.findall(word):
            out.update(run[i:i + n] for n in DIGIT_PIECES for i in range(len(run) - n + 1))
    return out


def store(session: Session, case_id: str, text: str) -> None:
    """Make the search index hold `text` as the case's search text (its copy in case_search and
    its pieces), in the caller's transaction: only the pieces that changed are written, found
    from the text the index held before."""
    conn = session.connection()
    row = conn.execute(select(CaseSearchText.doc, CaseSearchText.text)
                       .where(CaseSearchText.case_id == case_id)).one_or_none()
    if row is None:
        if not text:
            return
        doc = conn.execute(insert(CaseSearchText).values(case_id=case_id, text=text)
                           .returning(CaseSearchText.doc)).scalar_one()
        held: set[str] = set()
    else:
        doc, held = row.doc, grams(row.text)
        if row.text == text:
            return
        conn.execute(update(CaseSearchText).where(CaseSearchText.doc == doc).values(text=text))
    wanted = grams(text)
    if held - wanted:
        conn.execute(delete(CaseSearchGram).where(CaseSearchGram.doc == doc,
                                                  CaseSearchGram.gram.in_(sorted(held - wanted))))
    if wanted - held:
        conn.execute(insert(CaseSearchGram), [{"gram": g, "doc": doc} for g in sorted(wanted - held)])


def matching(session: Session, terms: list[str]) -> ColumnElement[bool]:
    """A WHERE clause over Case keeping the cases whose search text holds every one of `terms`
    (normalised).

    The cases come from the rarest piece of all the terms (case_search_grams: one range of its
    primary key), and the terms are then tested on those cases' text alone (case_search, by its
    key), a term that is that very piece needing no test. Only when no term has a piece (a
    single character, two digits) is every case's text tested: a scan of case_search, never of
    the cases' rows."""
    terms = _strongest(terms)
    piece = _rarest(session, terms)
    if piece is None:
        found = select(CaseSearchText.case_id).where(*_contains(session, terms))
    elif piece[1] == 0:
        return false()  # a piece no case holds: nothing to read
    else:
        found = (select(CaseSearchText.case_id)
                 .join(CaseSearchGram, CaseSearchGram.doc == CaseSearchText.doc)
                 .where(CaseSearchGram.gram == piece[0],
                        *_contains(session, [t for t in terms if t != piece[0]])))
    if session.get_bind().dialect.name == "postgresql":
        # The matches first, then their cases: left to itself PostgreSQL's planner walks every
        # case newest first for the page (LIMIT) and tests each, though the count needs all of
        # them (10 times slower for a word of thousands of cases).
        matches = found.cte("search_matches").prefix_with("MATERIALIZED")
        return Case.id.in_(select(matches.c.case_id))
    return Case.id.in_(found)


def _strongest(terms: list[str]) -> list[str]:
    """The terms without those another term holds (「やま」 is in 「やまだ」: testing the longer does)."""
    unique = sorted(set(terms), key=lambda t: (-len(t), t))
    return [t for i, t in enumerate(unique) if not any(t in longer for longer in unique[:i])]


def _rarest(session: Session, terms: list[str]) -> tuple[str, int] | None:
    """The piece of the terms held by the fewest cases (counted up to RARE_CAP; the longer piece
    first among equals) and its count (RARE_CAP for a sole piece, not counted); None if no
    term has a piece."""
    pieces = sorted(set().union(*(grams(t) for t in terms)))
    if not pieces:
        return None
    if len(pieces) == 1:
        return pieces[0], RARE_CAP  # the only one: not counted (the search finds out soon enough)
    counts = session.execute(select(*[
        select(func.count()).select_from(
            select(literal(1)).where(CaseSearchGram.gram == g).limit(RARE_CAP).subquery()).scalar_subquery()
        for g in pieces])).one()
    return min(zip(pieces, counts, strict=True), key=lambda p: (p[1], -len(p[0]), p[0]))


def _contains(session: Session, terms: list[str]) -> list[ColumnElement[bool]]:
    """`case_search.text` holds each term: a plain substring test where the database has one
    (cheaper than LIKE's pattern matcher, and nothing to escape)."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return [func.instr(CaseSearchText.text, t) > 0 for t in terms]
    if dialect == "postgresql":
        return [func.strpos(CaseSearchText.text, t) > 0 for t in terms]
    return [CaseSearchText.text.like(like_pattern(t), escape="\\") for t in terms]


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
    the household (a summary change sets it with the case's own update, engine.casework.writes)."""
    text = current_text(session, case)
    store(session, case.id, text)
    # A plain UPDATE, not an attribute change: it must not bump the case's version (an open
    # task's claim or a concurrent step would then conflict with an edit of the household).
    session.execute(update(Case).where(Case.id == case.id).values(search_text=text)
                    .execution_options(synchronize_session=False))
