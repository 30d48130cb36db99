"""Applying payments and account credit to open invoices, oldest due first (a payment may
name the invoices it pays first: a wire for one invoice)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import (
    Account,
    Invoice,
    InvoiceItem,
    Payment,
    PaymentAllocation,
)
from billing_worker.domain.payments import OpenBalance, allocate_payment
from billing_worker.domain.statuses import InvoiceStatus
from billing_worker.ids import new_id
from shared.money import Money


class RefundError(ValueError):
    pass


async def _open_invoices(session: AsyncSession, account: Account) -> list[Invoice]:
    return list(
        (
            await session.scalars(
                select(Invoice)
                .where(
                    Invoice.tenant_id == account.tenant_id,
                    Invoice.account_id == account.id,
                    Invoice.status == InvoiceStatus.OPEN,
                )
                .order_by(Invoice.due_at, Invoice.id)
            )
        ).all()
    )


async def _apply(
    session: AsyncSession,
    account: Account,
    amount: Money,
    payment_id: str | None,
    first: Sequence[str] = (),
) -> Money:
    """Pay open invoices: those named in ``first`` in that order, then the others oldest
    first; returns what was left over."""
    invoices = [i for i in await _open_invoices(session, account) if i.currency == amount.currency]
    named = {invoice_id: n for n, invoice_id in enumerate(first)}
    invoices.sort(key=lambda i: (named.get(i.id, len(named)), i.due_at, i.id))
    by_id = {inv.id: inv for inv in invoices}
    application = allocate_payment(
        amount,
        [
            OpenBalance(
                invoice_id=inv.id,
                balance=Money.from_minor(inv.total_minor - inv.paid_minor, inv.currency),
            )
            for inv in invoices
        ],
    )
    for allocation in application.allocations:
        invoice = by_id[allocation.invoice_id]
        invoice.paid_minor += allocation.amount.minor
        if invoice.paid_minor == invoice.total_minor:
            invoice.status = InvoiceStatus.PAID
        if invoice.is_summary:
            await settle_children(session, invoice, allocation.amount.minor)
        if payment_id is not None:
            session.add(
                PaymentAllocation(
                    payment_id=payment_id,
                    invoice_id=invoice.id,
                    amount_minor=allocation.amount.minor,
                )
            )
    return application.surplus


async def settle_children(session: AsyncSession, summary: Invoice, delta: int) -> None:
    """Carry ``delta`` minor units paid on (or, negative, refunded from) a parent's summary
    invoice to the children's invoices it lists: paid in the order listed, refunded in the
    reverse order."""
    children = (
        await session.scalars(
            select(Invoice)
            .join(InvoiceItem, InvoiceItem.child_invoice_id == Invoice.id)
            .where(InvoiceItem.invoice_id == summary.id, Invoice.tenant_id == summary.tenant_id)
            .order_by(InvoiceItem.id)
            .with_for_update()
        )
    ).all()
    for child in children if delta > 0 else reversed(children):
        if delta == 0:
            break
        step = (
            min(delta, child.total_minor - child.paid_minor)
            if delta > 0
            else max(delta, -child.paid_minor)
        )
        child.paid_minor += step
        child.status = (
            InvoiceStatus.PAID if child.paid_minor == child.total_minor else InvoiceStatus.OPEN
        )
        delta -= step


async def apply_account_credit(session: AsyncSession, account: Account) -> None:
    """Spend existing account credit on open invoices."""
    if account.credit_minor <= 0:
        return
    credit = Money.from_minor(account.credit_minor, account.currency)
    surplus = await _apply(session, account, credit, None)
    account.credit_minor = surplus.minor


async def record_payment(
    session: AsyncSession,
    account: Account,
    amount: Money,
    *,
    method: str,
    reference: str | None,
    now: datetime,
    pays_first: Sequence[str] = (),
) -> Payment:
    """Store a received payment and apply it (to the invoices it names first, if any); any
    surplus becomes account credit."""
    payment = Payment(
        id=new_id("pay"),
        tenant_id=account.tenant_id,
        account_id=account.id,
        amount_minor=amount.minor,
        currency=amount.currency,
        method=method,
        reference=reference,
        received_at=now,
    )
    session.add(payment)
    await session.flush()
    surplus = await _apply(session, account, amount, payment.id, pays_first)
    account.credit_minor += surplus.minor
    return payment
