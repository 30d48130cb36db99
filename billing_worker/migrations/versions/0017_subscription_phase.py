"""a subscription's phase today and ``expired`` status, kept so their changes are seen

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-25 03:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phase", sa.String(length=16), nullable=True))
        batch_op.drop_constraint(batch_op.f("ck_subscriptions_status"), type_="check")
        batch_op.create_check_constraint("status", "status IN ('active', 'expired')")
    # Subscriptions that ended before this version are expired already: no event for them.
    op.execute(
        "UPDATE subscriptions SET status = 'expired' "
        "WHERE entitlement_end IS NOT NULL AND entitlement_end <= CURRENT_DATE"
    )


def downgrade() -> None:
    op.execute("UPDATE subscriptions SET status = 'active'")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_subscriptions_status"), type_="check")
        batch_op.create_check_constraint("status", "status IN ('active', 'cancelled')")
        batch_op.drop_column("phase")
