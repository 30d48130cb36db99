"""webhook secrets sealed at rest: room for the sealed form

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24 18:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_COLUMNS = ("webhook_secret", "provider_webhook_secret")


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        for column in _COLUMNS:
            batch_op.alter_column(
                column, existing_type=sa.String(length=80), type_=sa.String(length=400)
            )


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        for column in _COLUMNS:
            batch_op.alter_column(
                column, existing_type=sa.String(length=400), type_=sa.String(length=80)
            )
