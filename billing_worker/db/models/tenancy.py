"""Tenants, their catalog versions and keys; the API's idempotent answers and the outbox."""

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
)
from sqlalchemy.orm import Mapped, mapped_column, undefer_group
from sqlalchemy.sql.expression import false as sa_false
from sqlalchemy.sql.expression import true as sa_true
from sqlalchemy.types import JSON

from billing_worker.db.models.base import Base
from billing_worker.db.sealed import Sealed


class Tenant(Base):
    __tablename__ = "tenants"
    __audit_name__ = "tenant"
    __audited__ = frozenset(
        (
            "name grace_days net_terms_days session_idle_seconds fail_open_seconds "
            "degraded_read_only draft_invoices zero_amount_invoices summary_commit_time "
            "channel_overdue dunning_policies notify_webhook_url notify_emails "
            "notify_customer webhook_secret provider_webhook_secret stripe_secret_key "
            "stripe_webhook_secret"
        ).split()
    )
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
    #: The tenant's Stripe secret key (``sk_…``/``rk_…``), or ``env:NAME`` naming the
    #: worker's environment variable that holds it; never shown by the API.
    stripe_secret_key: Mapped[str | None] = mapped_column(
        Sealed(), deferred=True, deferred_group="secrets"
    )
    #: Verifies the events the tenant's Stripe account sends (``whsec_…`` or ``env:NAME``).
    stripe_webhook_secret: Mapped[str | None] = mapped_column(
        Sealed(), deferred=True, deferred_group="secrets"
    )
    created_at: Mapped[datetime]
    __table_args__ = (
        CheckConstraint("channel_overdue IN ('follow', 'ignore')", name="channel_overdue"),
    )


class CatalogVersion(Base):
    """One uploaded catalog document; the latest upload per effective date is in force."""

    __tablename__ = "catalogs"
    __audit_name__ = "catalog"
    __audited__ = frozenset(("effective_date",))
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
    __audit_name__ = "api_key"
    __audited__ = frozenset(("kind", "secret_hash", "revoked_at"))
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    __table_args__ = (CheckConstraint("kind IN ('admin', 'gateway')", name="kind"),)


class ConsoleSession(Base):
    """A signed-in console: the cookie's secret is kept only as a SHA-256, beside the key
    that signed in (its revocation ends the session) and the form token (CSRF)."""

    __tablename__ = "console_sessions"
    secret_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The admin key that signed in; None for the operator key.
    key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"))
    #: The tenant whose data the console shows (the operator picks one).
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


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


#: Load a tenant's sealed secrets with it: ``session.get(Tenant, id, options=[WITH_SECRETS])``.
WITH_SECRETS = undefer_group("secrets")
