"""Bill and re-evaluate a batch of locked accounts: the loop the scheduler and invoice runs
share, reading through one prefetch and writing in one flush."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.catalogs import CatalogBook, NoCatalog, load_book
from billing_worker.db.models import Account, Tenant
from billing_worker.entitlements import refresh_family
from billing_worker.invoicer import bill_to, invoice_account
from billing_worker.prefetch import prefetch


async def bill_and_refresh(
    session: AsyncSession,
    accounts: Sequence[Account],
    now: datetime,
    *,
    target: date | None = None,
) -> int:
    """Invoice each bill-to account (to ``target``, default its today), then re-publish it
    and the accounts that follow it. Returns the number of invoices issued."""
    prefetched = await prefetch(session, accounts)
    tenants: dict[str, Tenant] = {}
    books: dict[str, CatalogBook | None] = {}
    invoices = 0
    for account in accounts:
        tenant = tenants.get(account.tenant_id) or await session.get(Tenant, account.tenant_id)
        if tenant is None:
            raise LookupError(f"account {account.id} has no tenant")
        tenants[tenant.id] = tenant
        if tenant.id not in books:
            try:
                books[tenant.id] = await load_book(session, tenant.id)
            except NoCatalog:
                books[tenant.id] = None
        book = books[tenant.id]
        if book is not None and (await bill_to(session, account)).id == account.id:
            issued = await invoice_account(
                session, tenant, account, now, target=target, book=book, prefetched=prefetched
            )
            invoices += issued is not None
        await refresh_family(session, tenant, account, now, book=book, prefetched=prefetched)
    await session.flush()
    return invoices
