"""parked units: an account or payment event whose processing failed is set aside

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 17:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _parked_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parked_error", sa.String(length=500), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        for column in _parked_columns():
            batch_op.add_column(column)
        batch_op.add_column(sa.Column("parked_job", sa.String(length=32), nullable=True))
    with op.batch_alter_table("payment_events", schema=None) as batch_op:
        for column in _parked_columns():
            batch_op.add_column(column)
    with op.batch_alter_table("invoice_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parked", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("running_scope", sa.String(length=80), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_invoice_runs_running_scope"), ["running_scope"]
        )


def downgrade() -> None:
    with op.batch_alter_table("invoice_runs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_invoice_runs_running_scope"), type_="unique")
        batch_op.drop_column("running_scope")
        batch_op.drop_column("parked")
    with op.batch_alter_table("payment_events", schema=None) as batch_op:
        batch_op.drop_column("parked_error")
        batch_op.drop_column("parked_at")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("parked_job")
        batch_op.drop_column("parked_error")
        batch_op.drop_column("parked_at")
