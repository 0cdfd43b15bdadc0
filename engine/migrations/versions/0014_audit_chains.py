"""audit trail in chains: a record's chain and place on it; seq allocated by the database

Every record written so far goes on chain 1 with its place there equal to its old `seq`, and
keeps its hash (chain 1's hashes have the one-chain form), so an existing trail verifies after
the upgrade, and anchors taken before it still match (they name chain 1's records). The head
row (id 1) becomes chain 1's head; other chains' heads are made by their first record.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 23:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | Sequence[str] | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('chain_seq', BIG, nullable=True))
    op.execute("UPDATE audit_records SET chain = 1, chain_seq = seq")
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.alter_column('chain', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('chain_seq', existing_type=BIG, nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_audit_records_chain'), ['chain', 'chain_seq'])
    if op.get_bind().dialect.name == 'postgresql':
        # `seq` is now allocated by the database (SQLite: the rowid already is), after the
        # records there are.
        op.execute("CREATE SEQUENCE audit_records_seq_seq OWNED BY audit_records.seq")
        op.execute("SELECT setval('audit_records_seq_seq', COALESCE((SELECT MAX(seq) FROM audit_records), 0) + 1, "
                   "false)")
        op.execute("ALTER TABLE audit_records ALTER COLUMN seq SET DEFAULT nextval('audit_records_seq_seq')")


def downgrade() -> None:
    # Only a trail that is still one chain goes back (records of other chains have no place
    # in a single sequence).
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT COUNT(*) FROM audit_records WHERE chain <> 1")).scalar():
        raise RuntimeError("the audit trail has records on chains other than 1; it cannot go back to one chain")
    if bind.dialect.name == 'postgresql':
        op.execute("ALTER TABLE audit_records ALTER COLUMN seq DROP DEFAULT")
        op.execute("DROP SEQUENCE audit_records_seq_seq")
    op.execute("DELETE FROM audit_head WHERE id <> 1")
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_records_chain'), type_='unique')
        batch_op.drop_column('chain_seq')
        batch_op.drop_column('chain')
