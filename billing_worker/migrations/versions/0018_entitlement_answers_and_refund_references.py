"""what the gateways answer per account, and the provider's id of a refund made there

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-25 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("entitlement", sa.JSON(), nullable=True))
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reference", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_column("reference")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("entitlement")
