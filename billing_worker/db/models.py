"""SQLAlchemy models. Money is integer minor units plus a CHAR(3) currency code."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
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
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, undefer_group
from sqlalchemy.sql.expression import false as sa_false
from sqlalchemy.sql.expression import true as sa_true
from sqlalchemy.types import JSON, TypeDecorator

from billing_worker.db.sealed import Sealed

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
    #: New invoices wait as drafts until committed (else they are issued at once).
    draft_invoices: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    #: A subscription starting in a free phase (or with a $0 fixed price) gets a $0 invoice.
    zero_amount_invoices: Mapped[bool] = mapped_column(default=True, server_default=sa_true())
    #: The local time ("HH:MM") at which a parent's summary draft of a day commits itself;
    #: None: at the end of that day.
    summary_commit_time: Mapped[str | None] = mapped_column(String(5))
    #: What a reseller's overdue standing does to its customers: "follow" or "ignore".
    channel_overdue: Mapped[str] = mapped_column(
        String(16), default="follow", server_default="follow"
    )
    #: Named dunning policies (documents); "default" applies unless a plan or account names
    #: another. Without one, the classic policy with ``grace_days``.
    dunning_policies: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Where advisory messages go: a webhook, administrators' addresses, the billing contact.
    notify_webhook_url: Mapped[str | None] = mapped_column(String(500))
    notify_emails: Mapped[list[str] | None] = mapped_column(JSON)
    notify_customer: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    #: Signs the webhooks Tollgate sends; verifies the ones payment providers send. Sealed
    #: at rest with the operator's key (``db.sealed``).
    #: Loaded only where asked for (``WITH_SECRETS``): a job that never signs never opens
    #: them, and never needs the key.
    webhook_secret: Mapped[str | None] = mapped_column(
        Sealed(), deferred=True, deferred_group="secrets"
    )
    provider_webhook_secret: Mapped[str | None] = mapped_column(
        Sealed(), deferred=True, deferred_group="secrets"
    )
    created_at: Mapped[datetime]
    __table_args__ = (
        CheckConstraint("channel_overdue IN ('follow', 'ignore')", name="channel_overdue"),
    )


class CatalogVersion(Base):
    """One uploaded catalog document; the latest upload per effective date is in force."""

    __tablename__ = "catalogs"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    effective_date: Mapped[date] = mapped_column(Date)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    __table_args__ = (Index("ix_catalogs_tenant_effective", "tenant_id", "effective_date"),)


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
    #: IANA time zone deciding the account's local dates (billing days, due dates).
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    #: Billing cycle day (1..31); set from the first subscription when not given.
    cycle_day: Mapped[int | None]
    #: A parent pays for its delegating children; a reseller for all its customers.
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    payment_delegated: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    #: Price list the account is billed on (a reseller's wholesale list), if not the default.
    price_list: Mapped[str | None] = mapped_column(String(100))
    #: Local date on which something next becomes billable (None: nothing will).
    next_bill_on: Mapped[date | None] = mapped_column(Date)
    standing: Mapped[str] = mapped_column(String(16))
    standing_reason: Mapped[str] = mapped_column(String(64))
    valid_until: Mapped[datetime | None]
    #: When the scheduler must look at this account again (None: only on an event).
    next_evaluation_at: Mapped[datetime | None] = mapped_column(index=True)
    ent_version: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The encoded entitlement record last published (``ent_version``): what a rebuild of
    #: a lost Redis republishes without recomputing (see ``billing_worker.jobs.rebuild``).
    ent_record: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    #: The tenant's dunning policy this account follows, if not its plan's or the default.
    dunning_policy: Mapped[str | None] = mapped_column(String(100))
    #: Exempt from dunning: its standing never drops for unpaid invoices.
    dunning_exempt: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    #: A manual suspension by the tenant, whatever the invoices say.
    suspended_manually: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    #: "automatic": the default payment method is charged; "manual": the customer pays.
    collection: Mapped[str] = mapped_column(
        String(16), default="automatic", server_default="automatic"
    )
    #: When the collector must look at this account (a new invoice or a retry is due).
    collect_at: Mapped[datetime | None] = mapped_column(index=True)
    #: The last collection the collector attempted (see ``billing_worker.payments.collection``).
    collect_key: Mapped[str | None] = mapped_column(String(120))
    #: The last charge was a hard decline: no retries until a new payment method.
    hard_declined: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    #: Set aside after its processing failed (see ``billing_worker.runtime.parking``): no job
    #: touches it until the tenant releases it.
    parked_at: Mapped[datetime | None]
    parked_error: Mapped[str | None] = mapped_column(String(500))
    #: The job that parked it: "scheduler", "invoice_run", "collector", "payment_queue".
    parked_job: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id"),
        Index("ix_accounts_tenant", "tenant_id", "id"),
        CheckConstraint("collection IN ('automatic', 'manual')", name="collection"),
        CheckConstraint("kind IN ('consumer', 'enterprise', 'reseller')", name="kind"),
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


class Subscription(Base):
    """Creation terms plus dated events; billing and access are derived from them."""

    __tablename__ = "subscriptions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    #: For an add-on, its base subscription.
    base_id: Mapped[str | None] = mapped_column(ForeignKey("subscriptions.id"))
    external_id: Mapped[str | None] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(100))
    price_list: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[int] = mapped_column(Integer)
    cycle_day: Mapped[int | None]
    entitlement_start: Mapped[date] = mapped_column(Date)
    billing_start: Mapped[date] = mapped_column(Date)
    entitlement_end: Mapped[date | None] = mapped_column(Date)
    billing_end: Mapped[date | None] = mapped_column(Date)
    #: Plan changes, quantity changes and pauses, in the order they were made.
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: Billing before this day cannot change; invoicing looks no further back.
    reconcile_from: Mapped[date | None] = mapped_column(Date)
    #: Keeps its access while the account is suspended for non-payment (e.g. prepaid).
    dunning_exempt: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    __table_args__ = (
        CheckConstraint("status IN ('active', 'cancelled')", name="status"),
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        UniqueConstraint("tenant_id", "external_id"),
    )


class Invoice(Base):
    __tablename__ = "invoices"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    #: The account-local day the invoice bills up to.
    invoice_date: Mapped[date] = mapped_column(Date)
    issued_at: Mapped[datetime]
    due_at: Mapped[datetime]
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    paid_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16))
    #: A parent's summary of its delegating children's invoices (one item per invoice).
    is_summary: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    __table_args__ = (
        CheckConstraint("total_minor >= 0", name="total_not_negative"),
        CheckConstraint("paid_minor >= 0 AND paid_minor <= total_minor", name="paid_range"),
        CheckConstraint(
            "status IN ('draft', 'open', 'paid', 'void', 'written_off')", name="status"
        ),
    )


class InvoiceItem(Base):
    """One line of an invoice. Charges are positive, credits negative; never edited."""

    __tablename__ = "invoice_items"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    subscription_id: Mapped[str | None] = mapped_column(ForeignKey("subscriptions.id"))
    kind: Mapped[str] = mapped_column(String(24))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    rate: Mapped[str] = mapped_column(String(400))
    plan: Mapped[str | None] = mapped_column(String(100))
    phase: Mapped[str | None] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(BigInteger, default=1)
    linked_item_id: Mapped[str | None] = mapped_column(ForeignKey("invoice_items.id"))
    #: For a parent's summary item, the child's invoice it stands for.
    child_invoice_id: Mapped[str | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    __table_args__ = (
        Index("ix_invoice_items_subscription", "subscription_id", "end_date"),
        CheckConstraint(
            "kind IN ('recurring', 'fixed', 'usage', 'repair', 'credit_applied',"
            " 'credit_generated', 'credit', 'charge', 'adjustment', 'parent_summary')",
            name="kind",
        ),
    )


class InvoiceEvent(Base):
    """An invoice's history: what was done to it, by the worker or the tenant, and why."""

    __tablename__ = "invoice_events"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"))
    #: "credited", "charged", "item_adjusted", "voided", "written_off", "write_off_undone"
    #: (issuing is the invoice's own ``issued_at``).
    action: Mapped[str] = mapped_column(String(32))
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(200))
    #: The invoice that carries the change, when it is another one (an adjustment's).
    related_invoice_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    __table_args__ = (Index("ix_invoice_events_invoice", "invoice_id", "id"),)


class UsageRecord(Base):
    """Units a tenant reported for a subscription on one local day; ``record_id`` dedupes."""

    __tablename__ = "usage_records"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"))
    record_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(100))
    day: Mapped[date] = mapped_column(Date)
    units: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    __table_args__ = (
        UniqueConstraint("tenant_id", "record_id"),
        Index("ix_usage_records_subscription_day", "subscription_id", "day"),
        CheckConstraint("units >= 0", name="units_not_negative"),
    )


class InvoiceRun(Base):
    """Invoicing many accounts for one day; ``cursor`` makes it resumable after a crash."""

    __tablename__ = "invoice_runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id"))
    target_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    invoices: Mapped[int] = mapped_column(Integer, default=0)
    cursor: Mapped[str] = mapped_column(String(32), default="")
    #: Accounts the run parked (their invoicing failed; the run went on with the rest).
    parked: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Tenant and day of a running run, unique: a second run for them is the same run.
    running_scope: Mapped[str | None] = mapped_column(String(80), unique=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    __table_args__ = (CheckConstraint("status IN ('running', 'finished')", name="status"),)


class PaymentMethod(Base):
    """A payment-provider token for an account; card data itself never reaches Tollgate."""

    __tablename__ = "payment_methods"
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
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)


class PaymentAttempt(Base):
    """One charge of a payment method, made once under its idempotency key."""

    __tablename__ = "payment_attempts"
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


class StandingChange(Base):
    """An account's standing history: each change with the instant it took effect (which
    a worker catching up after downtime records as of the moment it was due, not the
    moment it ran)."""

    __tablename__ = "standing_changes"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    effective_at: Mapped[datetime]
    standing: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64))
    previous_standing: Mapped[str] = mapped_column(String(16))
    __table_args__ = (Index("ix_standing_changes_account", "account_id", "effective_at", "id"),)


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


class IdempotentRequest(Base):
    """A management API POST made with an ``Idempotency-Key``, and the answer it got."""

    __tablename__ = "idempotent_requests"
    tenant_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    body_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    response: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


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
    #: The Redis counters' lifetime last folded (a token the fold puts in the hash) and the
    #: login total read from it: a new lifetime (Redis lost the day's counters) adds its
    #: total to ``logins`` instead of replacing it, so SQL never counts backwards.
    redis_epoch: Mapped[str | None] = mapped_column(String(32))
    redis_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime]


#: Load a tenant's sealed secrets with it: ``session.get(Tenant, id, options=[WITH_SECRETS])``.
WITH_SECRETS = undefer_group("secrets")
