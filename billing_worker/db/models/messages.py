"""Advisory messages and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import JSON

from billing_worker.db.models.base import Base


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
    """One message to one destination (a webhook URL or an address), retried with backoff."""

    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    #: Lets the unit of work insert the message before its deliveries, in one flush.
    message: Mapped[Message] = relationship(lazy="raise")
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
