"""the case search's index on cases.search_text

A trigram index (pg_trgm, GIN) on PostgreSQL, so that `search_text LIKE '%word%'` is answered from
the index at 100,000 cases; a plain index on SQLite, which the LIKE scans instead of the table.

pg_trgm makes trigrams of the characters the database's LC_CTYPE calls letters: under LC_CTYPE
"C" Japanese text has none and a search scans the table (still correct, slower). Create the
database with a UTF-8 ctype (C.UTF-8, ja_JP.UTF-8) for the index to serve Japanese words.

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-02 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0021'
down_revision: str | Sequence[str] | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Trusted since PostgreSQL 13: the database's owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_search_text', ['search_text'], unique=False, postgresql_using='gin',
                              postgresql_ops={'search_text': 'gin_trgm_ops'})


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_search_text')
    # The extension stays: dropping it could take other objects with it.
