"""Accounts, their users and subscriptions, standing history and usage."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import false as sa_false
from sqlalchemy.types import JSON

from billing_worker.db.models.base import Base


class Account(Base):
    __tablename__ = "accounts"
    __audit_name__ = "account"
    __audited__ = frozenset(
        (
            "external_id name email billing_address kind currency net_terms_days credit_minor "
            "timezone cycle_day parent_id payment_delegated price_list standing standing_reason "
            "dunning_policy dunning_exempt suspended_manually collection invoicing hard_declined "
            "parked_at parked_error entitlement"
        ).split()
    )
    __events_only__ = frozenset(("entitlement",))  # derived from changes the log holds
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    external_id: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    #: The postal address printed on its invoices, as lines.
    billing_address: Mapped[str | None] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    net_terms_days: Mapped[int] = mapped_column(Integer)
    credit_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    #: IANA time zone deciding the account's local dates (billing days, due dates).
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    #: Billing cycle day (1..31); set from the first subscription when not given.
    cycle_day: Mapped[int | None]
    #: A parent pays for its delegating children; a reseller for all its customers.
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))
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
    #: What the gateways answer for it (standing, reason, plan, features, seats, read-only,
    #: session policy), set only when that changes: an ``entitlement.changed`` event.
    entitlement: Mapped[dict[str, Any] | None] = mapped_column(JSON)
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
    #: "automatic": invoiced on its billing days; "draft": its invoices are drafts until
    #: committed (as the tenant's ``draft_invoices`` makes every account's); "held":
    #: nothing is invoiced until the tenant resumes it, and then what came due meanwhile
    #: is invoiced at once.
    invoicing: Mapped[str] = mapped_column(
        String(16), default="automatic", server_default="automatic"
    )
    #: When the collector must look at this account (a new invoice or a retry is due).
    collect_at: Mapped[datetime | None] = mapped_column(index=True)
    #: The last collection the collector attempted (see ``billing_worker.payments.collection``).
    collect_key: Mapped[str | None] = mapped_column(String(120))
    #: The latest automatic charge made late (after an outage): which retry of its
    #: timeline it was (0: an invoice's first charge) and when it was really made; the
    #: retries after it are spaced from then (``domain.dunning.LastCharge``).
    charged_retry: Mapped[int | None] = mapped_column(Integer)
    charged_at: Mapped[datetime | None]
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
        # Only accounts with a parent: most have none, and SQLite's statistics count the
        # NULLs as one value, so a full index looked useless to its planner (0022).
        Index(
            "ix_accounts_parent_id",
            "parent_id",
            sqlite_where=text("parent_id IS NOT NULL"),
            postgresql_where=text("parent_id IS NOT NULL"),
        ),
        # The few parked accounts, counted at each metrics scrape (0025).
        Index(
            "ix_accounts_parked",
            "parked_at",
            sqlite_where=text("parked_at IS NOT NULL"),
            postgresql_where=text("parked_at IS NOT NULL"),
        ),
        CheckConstraint("collection IN ('automatic', 'manual')", name="collection"),
        CheckConstraint("invoicing IN ('automatic', 'draft', 'held')", name="invoicing"),
        CheckConstraint("kind IN ('consumer', 'enterprise', 'reseller')", name="kind"),
        CheckConstraint("credit_minor >= 0", name="credit_not_negative"),
    )


class User(Base):
    """An end user of the tenant's application, belonging to one account."""

    __tablename__ = "users"
    __audit_name__ = "user"
    __audited__ = frozenset(("account_id", "external_id", "email", "status"))
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
    __audit_name__ = "subscription"
    __audited__ = frozenset(
        (
            "account_id external_id plan price_list quantity cycle_day entitlement_start "
            "billing_start entitlement_end billing_end events dunning_exempt status phase "
            "price_overrides"
        ).split()
    )
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
    #: The first plan's negotiated prices by phase (``invoicing.terms.override_rows``);
    #: a plan change carries the new plan's in its event.
    price_overrides: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    #: Plan changes, quantity changes and pauses, in the order they were made.
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: Billing before this day cannot change; invoicing looks no further back.
    reconcile_from: Mapped[date | None] = mapped_column(Date)
    #: Keeps its access while the account is suspended for non-payment (e.g. prepaid).
    dunning_exempt: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    #: The billing phase today (``trial``, ``discount``, ``evergreen``...), kept by the
    #: standing's evaluation so a change of phase is a change the audit log and the
    #: lifecycle events see; None outside billing.
    phase: Mapped[str | None] = mapped_column(String(16))
    #: The plan billed today and its recurring price per month in the account's currency
    #: (minor units), kept with ``phase`` for the console's MRR; None outside billing.
    plan_now: Mapped[str | None] = mapped_column(String(100))
    monthly_minor: Mapped[int | None] = mapped_column(BigInteger)
    #: ``expired`` once its entitlement has ended (kept like ``phase``), else ``active``.
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    __table_args__ = (
        CheckConstraint("status IN ('active', 'expired')", name="status"),
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        UniqueConstraint("tenant_id", "external_id"),
    )


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


class UsageDaily(Base):
    """What the gateways counted for one account on one UTC day (folded, idempotently)."""

    __tablename__ = "usage_daily"
    __audit_name__ = "usage_day"
    __audited__ = frozenset(("day", "logins", "active_users", "peak_sessions"))
    __events_only__ = __audited__  # a fold a minute per active account: too many to log
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
