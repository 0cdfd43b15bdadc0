"""cases: an index in the case list's order (newest first), so its first page is read from the
index, not sorted out of every case

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 23:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_cases_created_at_number', 'cases', ['created_at', 'number'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_cases_created_at_number', table_name='cases')
