"""What a tenant does to an account's invoices by hand: credit, one-off charges, item
adjustments, voids and write-offs, each recorded in the invoice history.

Issued invoices are never edited. A credit, a charge and an item adjustment are each an
invoice of their own, dated today (a credit's surplus becomes account credit, which pays
open invoices oldest first); a void and a write-off change only the invoice's status.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import Account, Invoice, InvoiceEvent, InvoiceItem, Tenant
from billing_worker.domain.calendar import Span
from billing_worker.domain.invoicing import Item, ItemKind, assemble
from billing_worker.domain.statuses import InvoiceStatus
from billing_worker.invoicing.invoicer import item_row, local_today, new_invoice
from billing_worker.invoicing.ledger import apply_account_credit
from shared.money import Money


class AdjustmentError(ValueError):
    """A change the invoice's state does not allow (the message says why)."""


def record(
    session: AsyncSession,
    invoice: Invoice,
    action: str,
    now: datetime,
    *,
    amount: Money | None = None,
    reason: str | None = None,
    related: Invoice | None = None,
) -> None:
    """Add a line to the invoice's history."""
    session.add(
        InvoiceEvent(
            tenant_id=invoice.tenant_id,
            invoice_id=invoice.id,
            action=action,
            amount_minor=amount.minor if amount is not None else None,
            reason=reason,
            related_invoice_id=related.id if related is not None else None,
            created_at=now,
        )
    )


async def _issue(
    session: AsyncSession,
    account: Account,
    items: Sequence[Item],
    now: datetime,
    *,
    draft: bool = False,
) -> Invoice:
    """An invoice of its own for ``items``, dated today; account credit pays what it can."""
    day = local_today(now, account.timezone)
    credit = Money.from_minor(account.credit_minor, account.currency)
    assembled = assemble(items, credit=Money.zero(account.currency) if draft else credit, day=day)
    assert assembled is not None
    status = "draft" if draft else ("open" if assembled.total.is_positive() else "paid")
    invoice = new_invoice(account, day, now, total=assembled.total, status=status)
    session.add(invoice)
    await session.flush()
    session.add_all(item_row(item, invoice) for item in assembled.items)
    if not draft:
        account.credit_minor = assembled.credit_after.minor
    await session.flush()
    if not draft:
        await apply_account_credit(session, account)
    return invoice


def _today(account: Account, now: datetime) -> Span:
    day = local_today(now, account.timezone)
    return Span(day, day + timedelta(days=1))


async def give_credit(
    session: AsyncSession, account: Account, amount: Money, reason: str | None, now: datetime
) -> Invoice:
    """Credit the account: a credit invoice whose surplus becomes account credit."""
    item = Item(kind=ItemKind.CREDIT, amount=-amount, span=_today(account, now),
                rate=f"credit:{reason or ''}")  # fmt: skip
    invoice = await _issue(session, account, [item], now)
    record(session, invoice, "credited", now, amount=amount, reason=reason)
    return invoice


async def add_charge(
    session: AsyncSession,
    account: Account,
    amount: Money,
    description: str,
    now: datetime,
    *,
    draft: bool = False,
) -> Invoice:
    """A one-off charge on an invoice of its own (a draft when asked)."""
    item = Item(kind=ItemKind.CHARGE, amount=amount, span=_today(account, now),
                rate=f"charge:{description}")  # fmt: skip
    invoice = await _issue(session, account, [item], now, draft=draft)
    record(session, invoice, "charged", now, amount=amount, reason=description)
    return invoice


async def adjust_item(
    session: AsyncSession,
    account: Account,
    item: InvoiceItem,
    amount: Money,
    reason: str | None,
    now: datetime,
) -> Invoice:
    """Reduce an issued charge by ``amount``, at most what is left of it after earlier
    adjustments and repairs; later repairs of the item are capped by what remains."""
    invoice = await session.get(Invoice, item.invoice_id)
    assert invoice is not None
    if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.VOID):
        raise AdjustmentError(f"invoice {invoice.id} is {invoice.status}: adjust issued items")
    if item.amount_minor <= 0 or item.kind not in ("recurring", "fixed", "usage", "charge"):
        raise AdjustmentError(f"item {item.id} is a {item.kind}, not a charge")
    taken = await session.scalar(
        select(func.coalesce(func.sum(InvoiceItem.amount_minor), 0)).where(
            InvoiceItem.tenant_id == item.tenant_id,
            InvoiceItem.linked_item_id == item.id,
            InvoiceItem.kind.in_(("repair", "adjustment")),
        )
    )
    left = item.amount_minor + int(taken or 0)
    if amount.minor > left:
        have = Money.from_minor(left, item.currency).format()
        raise AdjustmentError(f"only {have} is left of item {item.id} to adjust")
    line = Item(
        kind=ItemKind.ADJUSTMENT,
        amount=-amount,
        span=Span(item.start_date, item.end_date),
        subscription_id=item.subscription_id,
        rate=item.rate,
        plan=item.plan,
        quantity=item.quantity,
        linked_to=item.id,
    )
    carrier = await _issue(session, account, [line], now)
    record(session, invoice, "item_adjusted", now, amount=amount, reason=reason, related=carrier)
    return carrier


async def void_invoice(
    session: AsyncSession, account: Account, invoice: Invoice, reason: str | None, now: datetime
) -> None:
    """Void an unpaid invoice: it no longer counts, its items are billed again by the next
    invoicing run if still owed, and the account credit it spent comes back."""
    if invoice.status not in ("open", "draft") or invoice.paid_minor > 0:
        state = "partly paid" if invoice.paid_minor > 0 else invoice.status
        raise AdjustmentError(f"invoice {invoice.id} is {state}; only an unpaid one is voided")
    if invoice.is_summary:
        raise AdjustmentError(f"invoice {invoice.id} sums up child invoices: void those")
    summarized = await session.scalar(
        select(InvoiceItem.invoice_id).where(InvoiceItem.child_invoice_id == invoice.id).limit(1)
    )
    if summarized is not None:
        raise AdjustmentError(f"invoice {invoice.id} is on the parent's summary {summarized}")
    items = (
        await session.scalars(select(InvoiceItem).where(InvoiceItem.invoice_id == invoice.id))
    ).all()
    linked = await session.scalar(
        select(InvoiceItem.id)
        .where(
            InvoiceItem.tenant_id == invoice.tenant_id,
            InvoiceItem.linked_item_id.in_([i.id for i in items]),
        )
        .limit(1)
    )
    if linked is not None:
        raise AdjustmentError(f"invoice {invoice.id} has repaired or adjusted items")
    if any(i.kind == "credit_generated" for i in items):
        raise AdjustmentError(f"invoice {invoice.id} made account credit; credit it back instead")
    spent = -sum(i.amount_minor for i in items if i.kind == "credit_applied")
    invoice.status = InvoiceStatus.VOID
    account.credit_minor += spent
    await session.flush()
    await apply_account_credit(session, account)
    record(session, invoice, "voided", now, reason=reason)


async def write_off(
    session: AsyncSession, account: Account, invoice: Invoice, reason: str | None, now: datetime
) -> None:
    if invoice.status != InvoiceStatus.OPEN:
        raise AdjustmentError(f"invoice {invoice.id} is {invoice.status}; only open ones")
    invoice.status = InvoiceStatus.WRITTEN_OFF
    record(session, invoice, "written_off", now, reason=reason)


async def undo_write_off(
    session: AsyncSession, account: Account, invoice: Invoice, reason: str | None, now: datetime
) -> None:
    """Owe a written-off invoice again (it counts for dunning from its due date)."""
    if invoice.status != InvoiceStatus.WRITTEN_OFF:
        raise AdjustmentError(f"invoice {invoice.id} is {invoice.status}, not written off")
    invoice.status = InvoiceStatus.OPEN
    record(session, invoice, "write_off_undone", now, reason=reason)


async def history(session: AsyncSession, tenant: Tenant, invoice: Invoice) -> list[InvoiceEvent]:
    return list(
        (
            await session.scalars(
                select(InvoiceEvent)
                .where(InvoiceEvent.tenant_id == tenant.id, InvoiceEvent.invoice_id == invoice.id)
                .order_by(InvoiceEvent.id)
            )
        ).all()
    )
