"""Invoice adjustments by hand: credit given, one-off charges, an item reduced, an invoice
voided, written off or owed again, and what was done to an invoice after it was issued.
Each holds the account's family, applies ``invoicing.adjustments`` and re-publishes it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import Account, Invoice, InvoiceEvent, InvoiceItem, Tenant
from billing_worker.domain.moments import RealTime
from billing_worker.invoicing import adjustments
from billing_worker.services.amounts import in_currency_of, parse_amount
from billing_worker.services.errors import Conflict, NotFound
from billing_worker.services.families import lock_account_now, lock_family
from billing_worker.services.invoices import items_on
from billing_worker.standing.entitlements import refresh_family

StatusChange = Callable[[AsyncSession, Account, Invoice, str | None, datetime], Awaitable[None]]
#: What can be done to an invoice's status, by name.
STATUS_CHANGES: dict[str, StatusChange] = {
    "void": adjustments.void_invoice,
    "write_off": adjustments.write_off,
    "undo_write_off": adjustments.undo_write_off,
}


async def _locked_invoice(
    session: AsyncSession, tenant_id: str, invoice_id: str, real: RealTime
) -> tuple[Tenant, Account, Invoice]:
    """The tenant's invoice, locked after its account's family (brought up to now)."""
    found = await session.scalar(
        select(Invoice).where(Invoice.tenant_id == tenant_id, Invoice.id == invoice_id)
    )
    if found is None:
        raise NotFound(f"no invoice {invoice_id!r}")
    tenant, account, _payer = await lock_family(session, tenant_id, found.account_id, real)
    invoice = await session.get(Invoice, found.id, with_for_update=True)
    assert invoice is not None
    return tenant, account, invoice


async def give_credit(
    session: AsyncSession,
    tenant_id: str,
    account_id: str,
    real: RealTime,
    *,
    amount: str,
    currency: str,
    reason: str | None,
) -> Invoice:
    """Credit the account: a credit invoice whose amount pays open invoices, oldest first."""
    tenant, account = await lock_account_now(session, tenant_id, account_id, real)
    in_currency_of(account, currency)
    credit = parse_amount(amount, account.currency)
    invoice = await adjustments.give_credit(session, account, credit, reason, real.now)
    await refresh_family(session, tenant, account, real.now)
    return invoice


async def add_charge(
    session: AsyncSession,
    tenant_id: str,
    account_id: str,
    real: RealTime,
    *,
    amount: str,
    currency: str,
    description: str,
    draft: bool,
) -> Invoice:
    """Charge the account once, on an invoice of its own (a draft, if asked)."""
    tenant, account = await lock_account_now(session, tenant_id, account_id, real)
    in_currency_of(account, currency)
    charge = parse_amount(amount, account.currency)
    invoice = await adjustments.add_charge(
        session, account, charge, description, real.now, draft=draft
    )
    await refresh_family(session, tenant, account, real.now)
    return invoice


async def adjust_item(
    session: AsyncSession,
    tenant_id: str,
    invoice_id: str,
    item_id: str,
    real: RealTime,
    *,
    amount: str,
    reason: str | None,
) -> Invoice:
    """Reduce an issued item (at most by what is left of it); returns the invoice that
    carries the credit."""
    tenant, account, invoice = await _locked_invoice(session, tenant_id, invoice_id, real)
    item = await session.scalar(
        select(InvoiceItem).where(
            InvoiceItem.tenant_id == tenant.id,
            InvoiceItem.invoice_id == invoice.id,
            InvoiceItem.id == item_id,
        )
    )
    if item is None:
        raise NotFound(f"invoice {invoice.id} has no item {item_id!r}")
    reduction = parse_amount(amount, item.currency)
    try:
        carrier = await adjustments.adjust_item(session, account, item, reduction, reason, real.now)
    except adjustments.AdjustmentError as exc:
        raise Conflict.field("amount", str(exc)) from exc
    await refresh_family(session, tenant, account, real.now)
    return carrier


async def change_status(
    session: AsyncSession,
    tenant_id: str,
    invoice_id: str,
    real: RealTime,
    change: str,
    reason: str | None,
) -> Account:
    """Void, write off, or owe again (``STATUS_CHANGES``); returns the account."""
    tenant, account, invoice = await _locked_invoice(session, tenant_id, invoice_id, real)
    try:
        await STATUS_CHANGES[change](session, account, invoice, reason, real.now)
    except adjustments.AdjustmentError as exc:
        raise Conflict(str(exc)) from exc
    await refresh_family(session, tenant, account, real.now)
    return account


async def history(
    session: AsyncSession, tenant_id: str, invoice_id: str
) -> tuple[Invoice, list[InvoiceEvent]]:
    """The invoice and what was done to it after it was issued, oldest first."""
    invoice = await session.scalar(
        select(Invoice).where(Invoice.tenant_id == tenant_id, Invoice.id == invoice_id)
    )
    tenant = await session.get(Tenant, tenant_id)
    if invoice is None or tenant is None:
        raise NotFound(f"no invoice {invoice_id!r}")
    return invoice, list(await adjustments.history(session, tenant, invoice))


async def invoice_with_items(
    session: AsyncSession, invoice: Invoice
) -> tuple[Invoice, list[InvoiceItem]]:
    return invoice, await items_on(session, invoice)
