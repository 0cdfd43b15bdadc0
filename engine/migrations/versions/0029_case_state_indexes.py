"""a case's open tasks and pending timers read by the case, with or without statistics

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-03 18:45:00

Every step of a case reads its open tasks (case_id = ? AND state = 'open') and its pending
timers (case_id = ? AND status = 'pending'). SQLite's planner has no statistics unless ANALYZE
has run, and chooses by the indexes' shape: an index on case_id alone and one that starts with
the state or status each fix one column, and it took the second (for the tasks, depending on the
order the schema created them in), reading every open task or pending timer of every case on
each step: 2.4 ms at 20,000 pending timers, against 21 µs by the case.

ix_human_tasks_case_state (case_id, state) and ix_timers_case_status (case_id, status, due_at,
task_id: also in the order the case's page lists them, soonest first, and covering the step's
read) fix both columns, so they are chosen with or without statistics.
They replace ix_human_tasks_case_id and ix_timers_case_id, each a prefix of its replacement.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0029'
down_revision: str | Sequence[str] | None = '0028'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_human_tasks_case_state', 'human_tasks', ['case_id', 'state'], unique=False)
    op.drop_index('ix_human_tasks_case_id', table_name='human_tasks')
    op.create_index('ix_timers_case_status', 'timers', ['case_id', 'status', 'due_at', 'task_id'], unique=False)
    op.drop_index('ix_timers_case_id', table_name='timers')


def downgrade() -> None:
    op.create_index('ix_timers_case_id', 'timers', ['case_id'], unique=False)
    op.drop_index('ix_timers_case_status', table_name='timers')
    op.create_index('ix_human_tasks_case_id', 'human_tasks', ['case_id'], unique=False)
    op.drop_index('ix_human_tasks_case_state', table_name='human_tasks')
