"""parent summary invoices: delegating children keep their own invoices

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 14:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_OLD = (
    "'recurring', 'fixed', 'usage', 'repair', 'credit_applied', 'credit_generated', "
    "'credit', 'charge', 'adjustment'"
)
_NEW = _OLD + ", 'parent_summary'"


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("summary_commit_time", sa.String(length=5), nullable=True))
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_summary", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("invoice_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("child_invoice_id", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_invoice_items_child_invoice_id_invoices"),
            "invoices",
            ["child_invoice_id"],
            ["id"],
        )
        batch_op.create_index(
            batch_op.f("ix_invoice_items_child_invoice_id"), ["child_invoice_id"], unique=False
        )
        batch_op.drop_constraint(batch_op.f("ck_invoice_items_kind"), type_="check")
        batch_op.create_check_constraint("kind", f"kind IN ({_NEW})")


def downgrade() -> None:
    with op.batch_alter_table("invoice_items", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_invoice_items_kind"), type_="check")
        batch_op.create_check_constraint("kind", f"kind IN ({_OLD})")
        batch_op.drop_index(batch_op.f("ix_invoice_items_child_invoice_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_invoice_items_child_invoice_id_invoices"), type_="foreignkey"
        )
        batch_op.drop_column("child_invoice_id")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("is_summary")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("summary_commit_time")
