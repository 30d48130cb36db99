"""Giving back a payment's money: with a credit note by default, re-opening by choice.

A refund first gives back the credit the payment itself left on the account (what it paid
beyond the invoices it settled), and never credit of another origin (a downgrade's, an
adjustment's, another payment's). The rest comes from what the payment paid, newest
invoice first, in one of two ways:

- **with a credit note** (``adjust=True``, the default; Stripe's behaviour, Kill Bill's
  ``isAdjusted``): the invoice stays paid, and a credit note — an invoice of its own, shaped
  like a tenant's credit, linked in both histories — settles the refunded part in place of
  the money given back. Nothing is owed again: no charge is retried and dunning does not
  resume. This is the goodwill refund.
- **re-opening** (``adjust=False``): the invoice is open again for the refunded part, so
  collection and dunning take it up as they would any unpaid invoice (a mistaken charge
  given back to be paid another way; a dispute, which Stripe takes back at once).

Issued invoices are never edited: the credit note carries the change, and both invoices'
histories record it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import Account, Invoice, Payment, PaymentAllocation, Refund
from billing_worker.domain.calendar import Span
from billing_worker.domain.invoicing import Item, ItemKind, assemble
from billing_worker.domain.statuses import InvoiceStatus
from billing_worker.ids import new_id
from billing_worker.invoicing.adjustments import record
from billing_worker.invoicing.invoicer import item_row, local_today, new_invoice
from billing_worker.invoicing.ledger import RefundError, settle_children
from shared.money import Money


async def refund_payment(
    session: AsyncSession,
    account: Account,
    payment: Payment,
    amount: Money,
    *,
    reason: str | None,
    now: datetime,
    adjust: bool = True,
) -> Refund:
    """Give back ``amount`` of ``payment``: the credit it left first, then what it paid,
    newest invoice first, with a credit note (``adjust``) or re-opening it.

    Raises:
        RefundError: the amount exceeds what is left of the payment, or what of it can
            still be traced (credit it left that was since spent elsewhere cannot).
    """
    from_credit, allocations = await _sources(session, account, payment, amount)
    payment.refunded_minor += amount.minor
    account.credit_minor -= from_credit
    refund = Refund(
        id=new_id("ref"),
        tenant_id=account.tenant_id,
        payment_id=payment.id,
        amount_minor=amount.minor,
        reason=reason,
        created_at=now,
    )
    session.add(refund)
    rest = amount.minor - from_credit
    for allocation, invoice in allocations:
        if rest <= 0:
            break
        back = min(rest, allocation.amount_minor)
        allocation.amount_minor -= back
        rest -= back
        given = Money.from_minor(back, invoice.currency)
        if adjust:
            note = await _credit_note(session, account, invoice, given, reason, now)
            record(session, invoice, "refunded_with_credit_note", now, amount=given,
                   reason=reason, related=note)  # fmt: skip
        else:
            invoice.paid_minor -= back
            invoice.status = InvoiceStatus.OPEN
            if invoice.is_summary:
                await settle_children(session, invoice, -back)
            record(session, invoice, "refunded_reopened", now, amount=given, reason=reason)
    return refund


async def check_refund(
    session: AsyncSession, account: Account, payment: Payment, amount: Money
) -> None:
    """Raise ``RefundError`` when ``refund_payment`` would refuse ``amount``; write nothing
    (the check made before the provider is asked to give the money back)."""
    await _sources(session, account, payment, amount)


async def _sources(
    session: AsyncSession, account: Account, payment: Payment, amount: Money
) -> tuple[int, list[tuple[PaymentAllocation, Invoice]]]:
    """What a refund of ``amount`` takes from the account's credit, and the allocations of
    the payment it takes the rest from, newest invoice first."""
    if amount.minor > payment.amount_minor - payment.refunded_minor:
        raise RefundError("exceeds what is left of the payment")
    allocations = [
        (allocation, invoice)
        for allocation, invoice in await session.execute(
            select(PaymentAllocation, Invoice)
            .join(Invoice, Invoice.id == PaymentAllocation.invoice_id)
            .where(
                PaymentAllocation.payment_id == payment.id,
                Invoice.status.in_((InvoiceStatus.OPEN, InvoiceStatus.PAID)),
            )
            .order_by(Invoice.due_at.desc(), Invoice.id.desc())
        )
    ]
    from_credit = min(account.credit_minor, await _credit_left(session, payment), amount.minor)
    if from_credit + sum(a.amount_minor for a, _ in allocations) < amount.minor:
        raise RefundError("more than the payment's traceable part: its credit was spent")
    return from_credit, allocations


async def _credit_left(session: AsyncSession, payment: Payment) -> int:
    """What of the payment's own surplus (beyond the invoices it paid) is not refunded yet:
    the most of the account's credit a refund of it may give back."""
    allocated = await session.scalar(
        select(func.coalesce(func.sum(PaymentAllocation.amount_minor), 0)).where(
            PaymentAllocation.payment_id == payment.id
        )
    )
    return max(0, payment.amount_minor - payment.refunded_minor - int(allocated or 0))


async def _credit_note(
    session: AsyncSession,
    account: Account,
    invoice: Invoice,
    amount: Money,
    reason: str | None,
    now: datetime,
) -> Invoice:
    """An invoice of its own, dated today, shaped like a tenant's credit (a credit line and
    the credit it generates, total zero); what it generates settles the refunded part of
    ``invoice``, which stays paid, so none of it reaches the account's credit."""
    day = local_today(now, account.timezone)
    line = Item(kind=ItemKind.CREDIT, amount=-amount, span=Span(day, day + timedelta(days=1)),
                rate=f"refund:{invoice.id}:{reason or ''}")  # fmt: skip
    assembled = assemble([line], credit=Money.zero(amount.currency), day=day)
    assert assembled is not None
    note = new_invoice(account, day, now, total=assembled.total, status=InvoiceStatus.PAID)
    session.add(note)
    await session.flush()
    session.add_all(item_row(item, note) for item in assembled.items)
    record(session, note, "credit_note", now, amount=amount, reason=reason, related=invoice)
    return note
