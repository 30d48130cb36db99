"""the plan billed today and its recurring price per month, kept on each subscription

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-25 06:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_now", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("monthly_minor", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_column("monthly_minor")
        batch_op.drop_column("plan_now")
