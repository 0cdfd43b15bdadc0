"""the case search's own index: case_search_grams (the pieces of each case's search text) and
case_search (a copy of the text, narrow), filled from every case's search text

A query word is looked up by its rarest piece and tested on the narrow copy, where 0021's index
on cases.search_text (dropped here) was scanned whole on SQLite and on PostgreSQL had no
trigrams for words under three characters, nor any for Japanese under LC_CTYPE C (the pg_trgm
extension stays: dropping it could take other objects with it). ix_cases_search_listing lets
the matches be filtered, ordered and counted without reading the cases' rows. The pieces are
made here as engine.casework.search.grams makes them at this revision; a later change to them rebuilds
the table in a migration of its own.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0025'
down_revision: str | Sequence[str] | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DIGIT_RUN = re.compile(r"[0-9]+")
_BATCH = 10_000


def _grams(text: str) -> set[str]:
    out: set[str] = set()
    for word in text.split():
        out.update(word[i:i + 2] for i in range(len(word) - 1)
                   if not ("0" <= word[i] <= "9" and "0" <= word[i + 1] <= "9"))
        for run in _DIGIT_RUN.findall(word):
            out.update(run[i:i + n] for n in range(3, 7) for i in range(len(run) - n + 1))
    return out


def upgrade() -> None:
    op.create_table('case_search',
    sa.Column('doc', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_search_case_id_cases')),
    sa.PrimaryKeyConstraint('doc', name=op.f('pk_case_search')),
    sa.UniqueConstraint('case_id', name=op.f('uq_case_search_case_id'))
    )
    op.create_table('case_search_grams',
    sa.Column('gram', sa.String(length=8), nullable=False),
    sa.Column('doc', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['doc'], ['case_search.doc'], name=op.f('fk_case_search_grams_doc_case_search')),
    sa.PrimaryKeyConstraint('gram', 'doc', name=op.f('pk_case_search_grams')),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_search_text')
        batch_op.create_index('ix_cases_search_listing',
                              ['id', 'status', 'referring_group_id', 'process_key', 'created_at', 'number'],
                              unique=False)
    # Existing cases are found at once, by the search text they already have.
    bind = op.get_bind()
    bind.execute(sa.text("INSERT INTO case_search (case_id, text) SELECT id, search_text FROM cases "
                         "WHERE search_text IS NOT NULL AND search_text <> '' ORDER BY created_at, id"))
    table = sa.table('case_search_grams', sa.column('gram'), sa.column('doc'))
    rows: list[dict[str, object]] = []
    for doc, text in bind.execute(sa.text("SELECT doc, text FROM case_search")).all():
        rows += [{"gram": g, "doc": doc} for g in sorted(_grams(text))]
        if len(rows) >= _BATCH:
            bind.execute(table.insert(), rows)
            rows = []
    if rows:
        bind.execute(table.insert(), rows)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # 0021's index needs its operator class (a database made from the models has no pg_trgm).
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_search_listing')
        batch_op.create_index('ix_cases_search_text', ['search_text'], unique=False, postgresql_using='gin',
                              postgresql_ops={'search_text': 'gin_trgm_ops'})
    op.drop_table('case_search_grams')
    op.drop_table('case_search')
