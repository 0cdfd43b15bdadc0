"""queue index covers the queue page: ix_human_tasks_queue widened to every column the staff
work queue (engine.casework.queue) filters and sorts on, so a page is chosen from the index alone

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 14:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ['state', 'group_id', 'due_at']
AFTER = ['state', 'group_id', 'due_at', 'created_at', 'id', 'assignee_id', 'step', 'process_key', 'case_id']


def upgrade() -> None:
    op.drop_index('ix_human_tasks_queue', table_name='human_tasks')
    op.create_index('ix_human_tasks_queue', 'human_tasks', AFTER, unique=False)


def downgrade() -> None:
    op.drop_index('ix_human_tasks_queue', table_name='human_tasks')
    op.create_index('ix_human_tasks_queue', 'human_tasks', BEFORE, unique=False)
