"""invoice numbers, sequential per tenant from issue; the customer's billing address

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-25 06:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoice_numbers",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_invoice_numbers_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_invoice_numbers")),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number", sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_invoices_tenant_id_number"), ["tenant_id", "number"]
        )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("billing_address", sa.String(length=500), nullable=True))
    _number_issued_invoices()


def _number_issued_invoices() -> None:
    """Invoices issued before numbers existed are numbered in the order they were issued."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, tenant_id FROM invoices WHERE status <> 'draft' "
            "ORDER BY tenant_id, issued_at, id"
        )
    ).all()
    last: dict[str, int] = {}
    numbered = []
    for invoice_id, tenant_id in rows:
        last[tenant_id] = last.get(tenant_id, 0) + 1
        numbered.append({"id": invoice_id, "number": last[tenant_id]})
    if numbered:
        bind.execute(sa.text("UPDATE invoices SET number = :number WHERE id = :id"), numbered)
    if last:
        bind.execute(
            sa.text("INSERT INTO invoice_numbers (tenant_id, last_number) VALUES (:t, :n)"),
            [{"t": tenant, "n": number} for tenant, number in last.items()],
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("billing_address")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_invoices_tenant_id_number"), type_="unique")
        batch_op.drop_column("number")
    op.drop_table("invoice_numbers")
