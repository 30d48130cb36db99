"""invoice adjustments: item kinds and the invoice history

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 15:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_OLD = "'recurring', 'fixed', 'usage', 'repair', 'credit_applied', 'credit_generated'"
_NEW = _OLD + ", 'credit', 'charge', 'adjustment'"


def upgrade() -> None:
    with op.batch_alter_table("invoice_items", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_invoice_items_kind"), type_="check")
        batch_op.create_check_constraint("kind", f"kind IN ({_NEW})")
    op.create_table(
        "invoice_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("invoice_id", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("related_invoice_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_events_invoice_id_invoices")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_invoice_events_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_events")),
    )
    op.create_index("ix_invoice_events_invoice", "invoice_events", ["invoice_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_invoice_events_invoice", table_name="invoice_events")
    op.drop_table("invoice_events")
    with op.batch_alter_table("invoice_items", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_invoice_items_kind"), type_="check")
        batch_op.create_check_constraint("kind", f"kind IN ({_OLD})")
