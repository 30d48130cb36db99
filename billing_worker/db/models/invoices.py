"""Invoices, their items and history, and tenant-wide invoice runs."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import false as sa_false

from billing_worker.db.models.base import Base


class Invoice(Base):
    __tablename__ = "invoices"
    __audit_name__ = "invoice"
    __audited__ = frozenset(
        "account_id invoice_date due_at currency total_minor paid_minor status".split()
    )
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
    #: Sequential per tenant, given when the invoice is issued (a draft has none), in the
    #: order issuing transactions commit (``invoicing.numbering``).
    number: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        CheckConstraint("total_minor >= 0", name="total_not_negative"),
        CheckConstraint("paid_minor >= 0 AND paid_minor <= total_minor", name="paid_range"),
        CheckConstraint(
            "status IN ('draft', 'open', 'paid', 'void', 'written_off')", name="status"
        ),
    )


class InvoiceNumber(Base):
    """The last invoice number a tenant issued."""

    __tablename__ = "invoice_numbers"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    last_number: Mapped[int] = mapped_column(BigInteger)


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
    __audit_name__ = "invoice_event"
    __audited__ = frozenset("invoice_id action amount_minor reason related_invoice_id".split())
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


class InvoiceRun(Base):
    """Invoicing many accounts for one day; ``cursor`` makes it resumable after a crash."""

    __tablename__ = "invoice_runs"
    __audit_name__ = "invoice_run"
    __audited__ = frozenset(("target_date", "status", "total", "done", "invoices", "parked"))
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
