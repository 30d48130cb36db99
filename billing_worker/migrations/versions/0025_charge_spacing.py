"""an account remembers its latest late charge, to space the retries after it; the few
parked accounts are indexed for the metrics

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

_PARKED = sa.text("parked_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("charged_retry", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("charged_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_accounts_parked",
        "accounts",
        ["parked_at"],
        sqlite_where=_PARKED,
        postgresql_where=_PARKED,
    )


def downgrade() -> None:
    op.drop_index("ix_accounts_parked", table_name="accounts")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("charged_at")
        batch_op.drop_column("charged_retry")
