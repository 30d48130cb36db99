"""lifecycle events and the tenants' webhook endpoints

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25 02:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=True),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fanned_out", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_events_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_tenant", "events", ["tenant_id", "id"])
    op.create_index("ix_events_fan_out", "events", ["fanned_out", "id"])
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("types", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("secret", sa.String(length=400), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_webhook_endpoints_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index(op.f("ix_webhook_endpoints_tenant_id"), "webhook_endpoints", ["tenant_id"])
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.alter_column("message_id", existing_type=sa.String(length=32), nullable=True)
        batch_op.add_column(sa.Column("event_id", _ID, nullable=True))
        batch_op.add_column(sa.Column("endpoint_id", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_deliveries_event_id_events"), "events", ["event_id"], ["id"]
        )
        batch_op.create_foreign_key(
            op.f("fk_deliveries_endpoint_id_webhook_endpoints"),
            "webhook_endpoints",
            ["endpoint_id"],
            ["id"],
        )
        batch_op.create_index(op.f("ix_deliveries_event_id"), ["event_id"])
        batch_op.create_index(op.f("ix_deliveries_endpoint_id"), ["endpoint_id"])


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(op.f("ix_deliveries_endpoint_id"))
        batch_op.drop_index(op.f("ix_deliveries_event_id"))
        batch_op.drop_constraint(
            op.f("fk_deliveries_endpoint_id_webhook_endpoints"), type_="foreignkey"
        )
        batch_op.drop_constraint(op.f("fk_deliveries_event_id_events"), type_="foreignkey")
        batch_op.drop_column("endpoint_id")
        batch_op.drop_column("event_id")
        batch_op.alter_column("message_id", existing_type=sa.String(length=32), nullable=False)
    op.drop_index(op.f("ix_webhook_endpoints_tenant_id"), table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
    op.drop_index("ix_events_fan_out", table_name="events")
    op.drop_index("ix_events_tenant", table_name="events")
    op.drop_table("events")
