"""Payment methods (provider tokens only), payments, refunds, attempts and events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from billing_worker.db.models.base import Base


class PaymentMethod(Base):
    """A payment-provider token for an account; card data itself never reaches Tollgate."""

    __tablename__ = "payment_methods"
    __audit_name__ = "payment_method"
    __audited__ = frozenset("account_id provider token label is_default removed_at".split())
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    token: Mapped[str] = mapped_column(String(200))
    label: Mapped[str | None] = mapped_column(String(100))
    is_default: Mapped[bool]
    created_at: Mapped[datetime]
    #: Removed by the tenant: never charged again, kept for the charges that name it.
    removed_at: Mapped[datetime | None]
    __table_args__ = (UniqueConstraint("account_id", "token"),)


class Payment(Base):
    __tablename__ = "payments"
    __audit_name__ = "payment"
    __audited__ = frozenset(
        "account_id amount_minor currency method reference refunded_minor".split()
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime]
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint(
            "refunded_minor >= 0 AND refunded_minor <= amount_minor", name="refunded_range"
        ),
    )


class Refund(Base):
    __tablename__ = "refunds"
    __audit_name__ = "refund"
    __audited__ = frozenset(("payment_id", "amount_minor", "reason", "reference"))
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(200))
    #: The provider's id of a refund or dispute made there (``ch_…``, ``dp_…``), which
    #: records it once however often the provider tells of it; None for Tollgate's own.
    reference: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)


class PaymentAttempt(Base):
    """One charge of a payment method, made once under its idempotency key."""

    __tablename__ = "payment_attempts"
    __audit_name__ = "payment_attempt"
    __audited__ = frozenset("account_id amount_minor currency status reason hard".split())
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    payment_method_id: Mapped[str] = mapped_column(ForeignKey("payment_methods.id"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    hard: Mapped[bool] = mapped_column(default=False)
    reference: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_payment_attempts_status", "status", "updated_at"),
        CheckConstraint(
            "status IN ('pending', 'unknown', 'succeeded', 'declined', 'failed')", name="status"
        ),
    )


class PaymentEvent(Base):
    """The payment queue: every payment event, stored once under its key, applied once."""

    __tablename__ = "payment_events"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    #: "collection", "webhook", "manual" or "reconciliation".
    source: Mapped[str] = mapped_column(String(16))
    #: "charge.succeeded", "charge.failed", "charge.refunded" or "payment.received".
    type: Mapped[str] = mapped_column(String(32))
    #: For provider events, the charge (payment attempt) they are about.
    attempt_key: Mapped[str | None] = mapped_column(String(200))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(64))
    hard: Mapped[bool] = mapped_column(default=False)
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    applied_at: Mapped[datetime | None] = mapped_column(index=True)
    #: What applying it did: "applied", "duplicate", "superseded"; None while queued.
    outcome: Mapped[str | None] = mapped_column(String(32))
    payment_id: Mapped[str | None] = mapped_column(ForeignKey("payments.id"))
    #: Set aside after applying it failed; the queue passes over it until it is released.
    parked_at: Mapped[datetime | None]
    parked_error: Mapped[str | None] = mapped_column(String(500))
    __table_args__ = (UniqueConstraint("tenant_id", "key"),)


class PaymentAllocation(Base):
    __tablename__ = "payment_allocations"
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), primary_key=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
