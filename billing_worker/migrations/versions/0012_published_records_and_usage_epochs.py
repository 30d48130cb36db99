"""each account keeps the entitlement record it last published, for a fast rebuild;
usage folding remembers the lifetime of the Redis counters it read

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ent_record", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("usage_daily", schema=None) as batch_op:
        batch_op.add_column(sa.Column("redis_epoch", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("redis_logins", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_daily", schema=None) as batch_op:
        batch_op.drop_column("redis_logins")
        batch_op.drop_column("redis_epoch")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("ent_record")
