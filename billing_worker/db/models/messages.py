"""Advisory messages and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false as sa_false
from sqlalchemy.types import JSON

from billing_worker.db.models.base import Base
from billing_worker.db.sealed import Sealed


class Message(Base):
    """An advisory message to a tenant's administrators (and optionally the customer)."""

    __tablename__ = "messages"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    #: "payment_due", "standing_changed", "payment_failed" or "payment_recovered".
    kind: Mapped[str] = mapped_column(String(32))
    #: At most one message per key: one reminder per account per day, whatever reruns.
    dedup_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("tenant_id", "dedup_key"),)


class Delivery(Base):
    """One message to one destination (a webhook URL or an address), or one lifecycle event
    to one of the tenant's webhook endpoints, retried with backoff."""

    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    #: An advisory message (to the tenant's ``notify_webhook_url`` or an address)...
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id"), index=True)
    #: Lets the unit of work insert the message before its deliveries, in one flush.
    message: Mapped[Message | None] = relationship(lazy="raise")
    #: ...or a lifecycle event to a webhook endpoint (signed with the endpoint's secret).
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"), index=True)
    endpoint_id: Mapped[str | None] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    __table_args__ = (
        CheckConstraint("channel IN ('webhook', 'email')", name="channel"),
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    )


class Event(Base):
    """A lifecycle event (``billing_worker.domain.events``), written in the transaction of
    the change it reports; its (internal) id orders an account's events."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    #: The id a tenant sees (``evt_`` and random hex): the serial ``id`` would tell every
    #: tenant the platform's event volume. Events from before 0026 keep ``evt_<id>``.
    public_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    account_id: Mapped[str | None] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(40))
    #: ``{"object": type, "id": id, "changes": {field: [before, after]}}``
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    #: Deliveries to the endpoints subscribed at the time have been made.
    fanned_out: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    __table_args__ = (
        Index("ix_events_tenant", "tenant_id", "id"),
        Index("ix_events_fan_out", "fanned_out", "id"),
        # an event's sequence is its rank among its account's events (``lifecycle``)
        Index("ix_events_account", "tenant_id", "account_id", "id"),
    )


class WebhookEndpoint(Base):
    """A URL of the tenant's that receives the lifecycle events it subscribed to."""

    __tablename__ = "webhook_endpoints"
    __audit_name__ = "webhook_endpoint"
    __audited__ = frozenset("url types description secret disabled_at".split())
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    url: Mapped[str] = mapped_column(String(500))
    #: Event types, or ``["*"]`` for all.
    types: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(String(200))
    #: Signs each delivery (``Tollgate-Signature``); sealed at rest.
    secret: Mapped[str] = mapped_column(Sealed())
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]
