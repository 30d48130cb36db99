"""Invoicing an account on request (to a target date, or as a dry run), and committing a
draft invoice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import Account, Invoice, InvoiceItem, Tenant
from billing_worker.domain.statuses import InvoiceStatus
from billing_worker.invoicing.invoicer import commit_invoice, invoice_account, local_today
from billing_worker.services.errors import Conflict, InvalidRequest, NotFound
from billing_worker.services.families import lock_family
from billing_worker.standing.entitlements import refresh_family


@dataclass(frozen=True, slots=True)
class Billed:
    """What a change billed the paying account: its invoice (None: nothing) and items, and
    the account, whose credit is what is left after it."""

    invoice: Invoice | None
    items: list[InvoiceItem]
    payer: Account


async def items_on(session: AsyncSession, invoice: Invoice) -> list[InvoiceItem]:
    """The items of one invoice."""
    query = select(InvoiceItem).where(
        InvoiceItem.tenant_id == invoice.tenant_id, InvoiceItem.invoice_id == invoice.id
    )
    return list((await session.scalars(query)).all())


async def billed(session: AsyncSession, invoice: Invoice | None, payer: Account) -> Billed:
    """``invoice`` with its items (none when there is no invoice)."""
    if invoice is None:
        return Billed(None, [], payer)
    return Billed(invoice, await items_on(session, invoice), payer)


async def invoice_now(
    session: AsyncSession,
    tenant_id: str,
    account_id: str,
    now: datetime,
    *,
    target: date | None,
    dry_run: bool,
) -> tuple[Billed, date]:
    """Invoice the account for what is billable up to ``target`` (default today); returns
    what it billed and the invoice date. Held invoicing is refused, except as a dry run,
    which shows what resuming today would invoice."""
    tenant, account, payer = await lock_family(session, tenant_id, account_id)
    if payer.id != account.id:
        raise InvalidRequest.field(
            "account_id", f"this account is invoiced through its parent {payer.id}"
        )
    if account.invoicing == "held" and not dry_run:
        raise Conflict.field(
            "invoicing",
            'invoicing is held for this account: set it to "automatic" to resume, '
            "or ask for a dry run to see what that would invoice",
        )
    today = local_today(now, account.timezone)
    resumed_on = today if account.invoicing == "held" else None
    invoice = await invoice_account(
        session, tenant, account, now, target=target, resumed_on=resumed_on
    )
    if not dry_run:
        await refresh_family(session, tenant, account, now)
    return await billed(session, invoice, account), target or today


async def commit_draft(
    session: AsyncSession, tenant_id: str, invoice_id: str, now: datetime
) -> tuple[Invoice, list[InvoiceItem]]:
    """Issue a draft invoice, due by the account's terms, and re-publish the account."""
    found = await session.scalar(
        select(Invoice).where(Invoice.tenant_id == tenant_id, Invoice.id == invoice_id)
    )
    if found is None:
        raise NotFound(f"no invoice {invoice_id!r}")
    tenant, account, _payer = await lock_family(session, tenant_id, found.account_id)
    invoice = await session.get(Invoice, found.id, with_for_update=True)
    assert invoice is not None
    if invoice.status != InvoiceStatus.DRAFT:
        raise Conflict(f"invoice {invoice.id} is {invoice.status}, not a draft")
    await commit_invoice(session, account, invoice, now)
    await refresh_family(session, tenant, account, now)
    return invoice, await items_on(session, invoice)


@dataclass(frozen=True, slots=True)
class InvoiceParts:
    """An invoice with its items, the tenant that issued it and the account it bills."""

    invoice: Invoice
    items: list[InvoiceItem]
    tenant: Tenant
    account: Account


async def tenant_invoice(session: AsyncSession, tenant_id: str, invoice_id: str) -> InvoiceParts:
    """The tenant's invoice with its items and parties (else not found)."""
    invoice = await session.scalar(
        select(Invoice).where(Invoice.tenant_id == tenant_id, Invoice.id == invoice_id)
    )
    if invoice is None:
        raise NotFound(f"no invoice {invoice_id!r}")
    items = await items_on(session, invoice)
    tenant = await session.get(Tenant, invoice.tenant_id)
    account = await session.get(Account, invoice.account_id)
    assert tenant is not None and account is not None  # noqa: PT018  (foreign keys)
    return InvoiceParts(invoice, items, tenant, account)


async def items_of(
    session: AsyncSession, tenant_id: str, invoices: Sequence[Invoice]
) -> dict[str, list[InvoiceItem]]:
    """The items of ``invoices``, by invoice id."""
    rows = (
        await session.scalars(
            select(InvoiceItem).where(
                InvoiceItem.tenant_id == tenant_id,
                InvoiceItem.invoice_id.in_([i.id for i in invoices]),
            )
        )
    ).all()
    by_invoice: dict[str, list[InvoiceItem]] = {}
    for item in rows:
        by_invoice.setdefault(item.invoice_id, []).append(item)
    return by_invoice


def _before(date_column: Any, id_column: Any, day: Any, last_id: str) -> Any:
    """Rows after the cursor in newest-first order: an earlier day, or the same day and a
    smaller id."""
    return or_(date_column < day, and_(date_column == day, id_column < last_id))


async def tenant_invoice_row(
    session: AsyncSession, tenant_id: str, invoice_id: str
) -> Invoice | None:
    """The tenant's invoice of that id, if any (a page's cursor)."""
    found = await session.get(Invoice, invoice_id)
    return found if found is not None and found.tenant_id == tenant_id else None


@dataclass(frozen=True, slots=True)
class InvoiceFilter:
    status: str | None = None
    account_id: str | None = None
    since: date | None = None
    until: date | None = None


async def invoices_page(
    session: AsyncSession,
    tenant_id: str,
    wanted: InvoiceFilter,
    *,
    after: Invoice | None,
    limit: int,
) -> tuple[list[tuple[Invoice, list[InvoiceItem]]], bool]:
    """The tenant's invoices, newest first, after the cursor; whether more follow."""
    where: list[Any] = [Invoice.tenant_id == tenant_id]
    if wanted.status is not None:
        where.append(Invoice.status == wanted.status)
    if wanted.account_id is not None:
        where.append(Invoice.account_id == wanted.account_id)
    where += [Invoice.invoice_date >= wanted.since] if wanted.since else []
    where += [Invoice.invoice_date <= wanted.until] if wanted.until else []
    if after is not None:
        where.append(_before(Invoice.invoice_date, Invoice.id, after.invoice_date, after.id))
    found = (
        await session.scalars(
            select(Invoice)
            .where(*where)
            .order_by(Invoice.invoice_date.desc(), Invoice.id.desc())
            .limit(limit + 1)
        )
    ).all()
    page = list(found[:limit])
    items = await items_of(session, tenant_id, page)
    return [(i, items.get(i.id, [])) for i in page], len(found) > limit
