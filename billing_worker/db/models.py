"""SQLAlchemy models. Money is integer minor units plus a CHAR(3) currency code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import true as sa_true
from sqlalchemy.types import JSON, TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite has no timezone type)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    grace_days: Mapped[int] = mapped_column(Integer, default=30)
    net_terms_days: Mapped[int] = mapped_column(Integer, default=0)
    #: Gateway policy, published in every account's record.
    session_idle_seconds: Mapped[int] = mapped_column(Integer, default=1800, server_default="1800")
    fail_open_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    degraded_read_only: Mapped[bool] = mapped_column(default=True, server_default=sa_true())
    created_at: Mapped[datetime]


class ApiKey(Base):
    """A tenant's key. Only a SHA-256 of the secret is kept; the key id is public."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    __table_args__ = (CheckConstraint("kind IN ('admin', 'gateway')", name="kind"),)


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    external_id: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    net_terms_days: Mapped[int] = mapped_column(Integer)
    credit_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    standing: Mapped[str] = mapped_column(String(16))
    standing_reason: Mapped[str] = mapped_column(String(64))
    valid_until: Mapped[datetime | None]
    #: When the scheduler must look at this account again (None: only on an event).
    next_evaluation_at: Mapped[datetime | None] = mapped_column(index=True)
    ent_version: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime]
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id"),
        Index("ix_accounts_tenant", "tenant_id", "id"),
        CheckConstraint("kind IN ('consumer', 'enterprise')", name="kind"),
        CheckConstraint("credit_minor >= 0", name="credit_not_negative"),
    )


class User(Base):
    """An end user of the tenant's application, belonging to one account."""

    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(BigInteger, default=1)
    created_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("tenant_id", "external_id"),)


class Plan(Base):
    __tablename__ = "plans"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    features: Mapped[list[str]] = mapped_column(JSON, default=list)
    seat_limit: Mapped[int | None]
    session_policy: Mapped[str] = mapped_column(
        String(16), default="deny_new", server_default="deny_new"
    )
    created_at: Mapped[datetime]
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
    )


class Subscription(Base):
    __tablename__ = "subscriptions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"))
    status: Mapped[str] = mapped_column(String(16))
    cycle_day: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    #: Start of the next period to bill (billing in advance).
    next_billing_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    __table_args__ = (CheckConstraint("status IN ('active', 'cancelled')", name="status"),)


class Invoice(Base):
    __tablename__ = "invoices"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    issued_at: Mapped[datetime]
    due_at: Mapped[datetime]
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    paid_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16))
    __table_args__ = (
        # Billing a period twice is impossible, whatever crashes and re-runs.
        UniqueConstraint("subscription_id", "period_start"),
        CheckConstraint("paid_minor >= 0 AND paid_minor <= total_minor", name="paid_range"),
        CheckConstraint("status IN ('open', 'paid', 'void')", name="status"),
    )


class Payment(Base):
    __tablename__ = "payments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime]
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)


class PaymentAllocation(Base):
    __tablename__ = "payment_allocations"
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), primary_key=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)


class OutboxEntry(Base):
    """A Redis write owed by a committed transaction; drained in ``id`` order."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    tenant_id: Mapped[str] = mapped_column(String(32))
    redis_key: Mapped[str] = mapped_column(String(512))
    version: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class UsageDaily(Base):
    """What the gateways counted for one account on one UTC day (folded, idempotently)."""

    __tablename__ = "usage_daily"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    logins: Mapped[int] = mapped_column(Integer, default=0)
    active_users: Mapped[int] = mapped_column(Integer, default=0)
    peak_sessions: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]
