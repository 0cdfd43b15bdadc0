"""household members and the case search text

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 02:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019'
down_revision: str | Sequence[str] | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('household_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kana', sa.String(length=200), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('sex', sa.String(length=16), nullable=True),
    sa.Column('relation', sa.String(length=32), nullable=True),
    sa.Column('address', sa.String(length=400), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('attributes', sa.JSON(), nullable=False),
    sa.Column('department_id', sa.String(length=64), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_household_members_case_id_cases')),
    sa.ForeignKeyConstraint(['department_id'], ['groups.id'], name=op.f('fk_household_members_department_id_groups')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_household_members'))
    )
    with op.batch_alter_table('household_members', schema=None) as batch_op:
        batch_op.create_index('ix_household_members_case_position', ['case_id', 'position'], unique=False)

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_text', sa.Text(), nullable=False, server_default=''))
    # Existing cases become findable by number and summary at once (they have no household yet).
    from engine.casework.search import normalize

    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, number, summary FROM cases")).all()
    for case_id, number, summary in rows:
        bind.execute(sa.text("UPDATE cases SET search_text = :t WHERE id = :id"),
                     {"t": normalize(f"{number} {summary or ''}"), "id": case_id})



def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('search_text')

    with op.batch_alter_table('household_members', schema=None) as batch_op:
        batch_op.drop_index('ix_household_members_case_position')

    op.drop_table('household_members')
