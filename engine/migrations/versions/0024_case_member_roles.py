"""case members: the role a group holds in the case (支援会議の役割分担)

Revision ID: 0024
Revises: 0022
Create Date: 2026-12-02 03:00:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0024'
down_revision: str | Sequence[str] | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('case_members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.Text(), nullable=True))
    # Cases whose support meeting was held before: their groups hold the roles of the latest
    # meeting record (a group that was not yet a member becomes one, as a meeting now makes it).
    bind = op.get_bind()
    events = sa.table("case_events", sa.column("id", sa.Integer), sa.column("case_id", sa.String),
                      sa.column("kind", sa.String), sa.column("step", sa.String), sa.column("at", sa.DateTime),
                      sa.column("data", sa.JSON))
    latest: dict[str, tuple[object, object]] = {}
    for case_id, at, data in bind.execute(sa.select(events.c.case_id, events.c.at, events.c.data)
                                          .where(events.c.kind == "task_completed", events.c.step == "meeting")
                                          .order_by(events.c.id)):
        latest[case_id] = (at, data)
    for case_id, (at, data) in latest.items():
        if isinstance(data, str):
            data = json.loads(data)
        held: dict[str, list[str]] = {}
        for item in (data or {}).get("roles") or []:
            if isinstance(item, dict) and isinstance(item.get("group"), str) and isinstance(item.get("role"), str):
                held.setdefault(item["group"], []).append(item["role"])
        for group_id, texts in held.items():
            role = "、".join(texts)
            updated = bind.execute(sa.text("UPDATE case_members SET role = :role WHERE case_id = :c AND group_id = :g"),
                                   {"role": role, "c": case_id, "g": group_id}).rowcount
            exists = bind.execute(sa.text("SELECT 1 FROM groups WHERE id = :g"), {"g": group_id}).first()
            if not updated and exists:
                bind.execute(sa.text("INSERT INTO case_members (case_id, group_id, source, since, role) "
                                     "VALUES (:c, :g, 'support_meeting', :at, :role)"),
                             {"c": case_id, "g": group_id, "at": at, "role": role})


def downgrade() -> None:
    with op.batch_alter_table('case_members', schema=None) as batch_op:
        batch_op.drop_column('role')
