"""accounts are looked up by parent through an index of the accounts that have one

Most accounts have no parent. SQLite's ANALYZE counts every NULL as the same value, so
with the full index its statistics said a parent's children were the whole table, and the
planner scanned the table instead (an invoice run's batch did, once per batch: the run
slowed as accounts grew). The partial index holds only accounts with a parent.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 20:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_HAS_PARENT = sa.text("parent_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_accounts_parent_id", table_name="accounts")
    op.create_index(
        "ix_accounts_parent_id",
        "accounts",
        ["parent_id"],
        sqlite_where=_HAS_PARENT,
        postgresql_where=_HAS_PARENT,
    )


def downgrade() -> None:
    op.drop_index("ix_accounts_parent_id", table_name="accounts")
    op.create_index("ix_accounts_parent_id", "accounts", ["parent_id"])
