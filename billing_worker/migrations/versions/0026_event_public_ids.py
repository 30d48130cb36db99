"""an event has an opaque public id, and its account's events an index to rank it in

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_id", sa.String(length=40), nullable=True))
    # the events receivers have already seen keep the id they were sent with
    op.execute("UPDATE events SET public_id = 'evt_' || CAST(id AS VARCHAR(20))")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_events_public_id"), ["public_id"])
        batch_op.create_index("ix_events_account", ["tenant_id", "account_id", "id"])


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_account")
        batch_op.drop_constraint(batch_op.f("uq_events_public_id"), type_="unique")
        batch_op.drop_column("public_id")
