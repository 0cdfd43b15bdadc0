"""users: an initial or reset password must be changed at the next sign-in

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-02 06:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0028'
down_revision: str | Sequence[str] | None = '0027'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing users keep signing in as before: only passwords set by an administrator from now
    # on are temporary.
    # A plain ADD COLUMN (SQLite has it for a NOT NULL column with a constant default): a batch
    # copy of `users` would have to drop the table every other table points at.
    op.add_column('users', sa.Column('password_change_required', sa.Boolean(), nullable=False,
                                     server_default=sa.false()))


def downgrade() -> None:
    # Not a batch copy either (see upgrade); SQLite has DROP COLUMN since 3.35.
    op.drop_column('users', 'password_change_required')
