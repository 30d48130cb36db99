"""an account remembers its latest automatic charge, to space the retries after it

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


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("charged_retry", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("charged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("charged_at")
        batch_op.drop_column("charged_retry")
