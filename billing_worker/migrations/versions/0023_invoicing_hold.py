"""an account's invoicing can be held (and resumes with one invoice for what came due), or
make drafts to review

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 07:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("invoicing", sa.String(length=16), server_default="automatic", nullable=False)
        )
        batch_op.create_check_constraint("invoicing", "invoicing IN ('automatic', 'draft', 'held')")


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_accounts_invoicing"), type_="check")
        batch_op.drop_column("invoicing")
