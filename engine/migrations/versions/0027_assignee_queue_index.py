"""the queue's assigned-to-me part and the heatmap's open tasks read from covering indexes

Revision ID: 0027
Revises: 0025
Create Date: 2026-12-02 06:10:00

ix_human_tasks_assignee (assignee_id, state) becomes ix_human_tasks_assignee_queue, which also
holds every column the queue filters and sorts on: the tasks of other groups assigned to the
caller are chosen without reading a row per task assigned to the caller. The old index is a
prefix of the new one, so whatever used it can use the new one.

ix_human_tasks_state_step_created also holds due_at and assignee_id, and ix_cases_report the
case columns a report tests per task (status, last_event_at, referring group, version): the
heatmap's and the workload's open counts then read no table row per open task.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0027'
down_revision: str | Sequence[str] | None = '0025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ['assignee_id', 'state', 'group_id', 'due_at', 'created_at', 'id', 'step', 'process_key', 'case_id']
STATE_STEP = ['state', 'process_key', 'step', 'created_at', 'case_id']
REPORT = ['id', 'status', 'last_event_at', 'referring_group_id', 'definition_id']


def upgrade() -> None:
    op.create_index('ix_human_tasks_assignee_queue', 'human_tasks', COLUMNS, unique=False)
    op.drop_index('ix_human_tasks_assignee', table_name='human_tasks')
    op.drop_index('ix_human_tasks_state_step_created', table_name='human_tasks')
    op.create_index('ix_human_tasks_state_step_created', 'human_tasks', [*STATE_STEP, 'due_at', 'assignee_id'],
                    unique=False)
    op.create_index('ix_cases_report', 'cases', REPORT, unique=False)


def downgrade() -> None:
    op.drop_index('ix_cases_report', table_name='cases')
    op.drop_index('ix_human_tasks_state_step_created', table_name='human_tasks')
    op.create_index('ix_human_tasks_state_step_created', 'human_tasks', STATE_STEP, unique=False)
    op.create_index('ix_human_tasks_assignee', 'human_tasks', ['assignee_id', 'state'], unique=False)
    op.drop_index('ix_human_tasks_assignee_queue', table_name='human_tasks')
