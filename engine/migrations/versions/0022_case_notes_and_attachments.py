"""support records (case notes, their revisions) and documents attached to cases

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0022'
down_revision: str | Sequence[str] | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('case_notes',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('edited_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_case_notes_author_id_users')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_notes_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_notes'))
    )
    with op.batch_alter_table('case_notes', schema=None) as batch_op:
        batch_op.create_index('ix_case_notes_case_occurred', ['case_id', 'occurred_at', 'id'], unique=False)

    op.create_table('case_note_revisions',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('note_id', BIG_ID, nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('edited_by_id', sa.Integer(), nullable=False),
    sa.Column('edited_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['edited_by_id'], ['users.id'], name=op.f('fk_case_note_revisions_edited_by_id_users')),
    sa.ForeignKeyConstraint(['note_id'], ['case_notes.id'], name=op.f('fk_case_note_revisions_note_id_case_notes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_note_revisions'))
    )
    with op.batch_alter_table('case_note_revisions', schema=None) as batch_op:
        batch_op.create_index('ix_case_note_revisions_note', ['note_id', 'id'], unique=False)

    op.create_table('case_attachments',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(), nullable=False),
    sa.Column('removed_at', sa.DateTime(), nullable=True),
    sa.Column('removed_by_id', sa.Integer(), nullable=True),
    sa.Column('removal_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_attachments_case_id_cases')),
    sa.ForeignKeyConstraint(['removed_by_id'], ['users.id'], name=op.f('fk_case_attachments_removed_by_id_users')),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_case_attachments_uploaded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_attachments'))
    )
    with op.batch_alter_table('case_attachments', schema=None) as batch_op:
        batch_op.create_index('ix_case_attachments_case_uploaded', ['case_id', 'uploaded_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case_attachments', schema=None) as batch_op:
        batch_op.drop_index('ix_case_attachments_case_uploaded')
    op.drop_table('case_attachments')
    with op.batch_alter_table('case_note_revisions', schema=None) as batch_op:
        batch_op.drop_index('ix_case_note_revisions_note')
    op.drop_table('case_note_revisions')
    with op.batch_alter_table('case_notes', schema=None) as batch_op:
        batch_op.drop_index('ix_case_notes_case_occurred')
    op.drop_table('case_notes')
