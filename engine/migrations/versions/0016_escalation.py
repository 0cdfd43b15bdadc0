"""escalation: human_tasks.escalation_level / escalate_at, and the escalations table (要対応)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 23:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
# The newest migration on this branch; the lead chains it after the others when merging.
down_revision: str | Sequence[str] | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('human_tasks') as batch:
        batch.add_column(sa.Column('escalation_level', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('escalate_at', sa.DateTime(), nullable=True))
        batch.create_index('ix_human_tasks_escalation', ['escalation_level', 'state', 'due_at'], unique=False)
        batch.create_index('ix_human_tasks_escalation_second', ['escalation_level', 'state', 'escalate_at'],
                           unique=False)
    op.create_table('escalations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('task_id', sa.String(length=36), nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('audience', sa.String(length=32), nullable=False),
    sa.Column('group_id', sa.String(length=64), nullable=True),
    sa.Column('due_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(), nullable=True),
    sa.Column('acknowledged_by_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['acknowledged_by_id'], ['users.id'], name=op.f('fk_escalations_acknowledged_by_id_users')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_escalations_case_id_cases')),
    sa.ForeignKeyConstraint(['task_id'], ['human_tasks.id'], name=op.f('fk_escalations_task_id_human_tasks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalations')),
    sa.UniqueConstraint('task_id', 'level', name=op.f('uq_escalations_task_id'))
    )
    op.create_index('ix_escalations_audience', 'escalations', ['audience', 'acknowledged_at', 'group_id'],
                    unique=False)
    op.create_index(op.f('ix_escalations_case_id'), 'escalations', ['case_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_escalations_case_id'), table_name='escalations')
    op.drop_index('ix_escalations_audience', table_name='escalations')
    op.drop_table('escalations')
    with op.batch_alter_table('human_tasks') as batch:
        batch.drop_index('ix_human_tasks_escalation_second')
        batch.drop_index('ix_human_tasks_escalation')
        batch.drop_column('escalate_at')
        batch.drop_column('escalation_level')
