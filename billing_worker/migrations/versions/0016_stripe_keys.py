"""a tenant's Stripe secret key and webhook signing secret

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-25 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stripe_secret_key", sa.String(length=400), nullable=True))
        batch_op.add_column(
            sa.Column("stripe_webhook_secret", sa.String(length=400), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("stripe_webhook_secret")
        batch_op.drop_column("stripe_secret_key")
