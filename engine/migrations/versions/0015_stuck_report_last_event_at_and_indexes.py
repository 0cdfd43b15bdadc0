"""stuck report: cases.last_event_at (backfilled from case_events) and the report's indexes

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 23:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | Sequence[str] | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_event_at', sa.DateTime(), nullable=True))
    # Every existing case's newest history row, so `idle` is right from the first report.
    op.execute("UPDATE cases SET last_event_at = (SELECT max(case_events.at) FROM case_events "
               "WHERE case_events.case_id = cases.id)")
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_status_last_event_at', ['status', 'last_event_at'], unique=False)
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_human_tasks_state_due_at', ['state', 'due_at', 'case_id'], unique=False)
        batch_op.create_index('ix_human_tasks_state_assignee_created', ['state', 'assignee_id', 'created_at', 'case_id'],
                              unique=False)
        batch_op.create_index('ix_human_tasks_state_step_created', ['state', 'process_key', 'step', 'created_at',
                                                                    'case_id'],
                              unique=False)
        batch_op.create_index('ix_human_tasks_completed', ['process_key', 'step', 'completed_at'], unique=False)
        batch_op.create_index('ix_human_tasks_case_people', ['case_id', 'assignee_id', 'completed_by_id'], unique=False)
    with op.batch_alter_table('message_waits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_waits_since'), ['since'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('message_waits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_waits_since'))
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_human_tasks_case_people')
        batch_op.drop_index('ix_human_tasks_completed')
        batch_op.drop_index('ix_human_tasks_state_step_created')
        batch_op.drop_index('ix_human_tasks_state_assignee_created')
        batch_op.drop_index('ix_human_tasks_state_due_at')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_status_last_event_at')
        batch_op.drop_column('last_event_at')
