"""reports: indexes for the visibility sets of a one-agency reader (cases by meeting group, by
a person's tasks)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0018'
down_revision: str | Sequence[str] | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_human_tasks_assignee_case', ['assignee_id', 'case_id'], unique=False)
        batch_op.create_index('ix_human_tasks_completed_by_case', ['completed_by_id', 'case_id'], unique=False)
    with op.batch_alter_table('case_members', schema=None) as batch_op:
        batch_op.create_index('ix_case_members_group_case', ['group_id', 'case_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case_members', schema=None) as batch_op:
        batch_op.drop_index('ix_case_members_group_case')
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_human_tasks_completed_by_case')
        batch_op.drop_index('ix_human_tasks_assignee_case')
