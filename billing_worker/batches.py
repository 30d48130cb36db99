"""Bill and re-evaluate a batch of locked accounts: the loop the scheduler and invoice runs
share, reading through one prefetch and writing in one flush.

The scheduler *catches each account up*: it processes every due moment of the account up
to now, in time order and each as of its own instant (``domain.moments``), so a worker
that was down for a weekend, or a test clock moved 90 days at once, reaches what a worker
awake at every moment would have. It stops early only where a charge became due: the
collector makes it as of that moment, and its outcome decides what the later moments do.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.catalogs import CatalogBook, NoCatalog, load_book
from billing_worker.db.models import Account, PaymentAttempt, Tenant
from billing_worker.domain.moments import catch_up_step
from billing_worker.entitlements import refresh_family
from billing_worker.invoicer import bill_to, invoice_account
from billing_worker.prefetch import Prefetched, prefetch
from billing_worker.summaries import summarize

log = logging.getLogger(__name__)


class _Books:
    """Each tenant and its catalog book, loaded once per batch."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._tenants: dict[str, Tenant] = {}
        self._books: dict[str, CatalogBook | None] = {}

    async def of(self, account: Account) -> tuple[Tenant, CatalogBook | None]:
        tenant = self._tenants.get(account.tenant_id)
        if tenant is None:
            tenant = await self._session.get(Tenant, account.tenant_id)
            if tenant is None:
                raise LookupError(f"account {account.id} has no tenant")
            self._tenants[tenant.id] = tenant
        if tenant.id not in self._books:
            try:
                self._books[tenant.id] = await load_book(self._session, tenant.id)
            except NoCatalog:
                self._books[tenant.id] = None
        return tenant, self._books[tenant.id]


async def _process(
    session: AsyncSession,
    tenant: Tenant,
    book: CatalogBook | None,
    account: Account,
    at: datetime,
    prefetched: Prefetched,
    *,
    target: date | None = None,
) -> bool:
    """Invoice the account (if it is a bill-to account) and re-publish its family, as of
    ``at``; returns whether an invoice was issued."""
    issued = None
    if book is not None and (await bill_to(session, account)).id == account.id:
        issued = await invoice_account(
            session, tenant, account, at, target=target, book=book, prefetched=prefetched
        )
    await summarize(session, tenant, account, at, prefetched)
    await refresh_family(session, tenant, account, at, book=book, prefetched=prefetched)
    return issued is not None


async def bill_and_refresh(
    session: AsyncSession,
    accounts: Sequence[Account],
    now: datetime,
    *,
    target: date | None = None,
) -> int:
    """Invoice each bill-to account (to ``target``, default its today), then re-publish it
    and the accounts that follow it, as of ``now``. Returns the number of invoices issued."""
    prefetched = await prefetch(session, accounts)
    books = _Books(session)
    invoices = 0
    for account in accounts:
        tenant, book = await books.of(account)
        invoices += await _process(session, tenant, book, account, now, prefetched, target=target)
    await session.flush()
    return invoices


async def bring_up_to(session: AsyncSession, account: Account, now: datetime) -> None:
    """Before an action changes a (locked) account, process the moments it is still due
    from (a worker that was down may not have reached them yet), so the action lands after
    them, as it would have with a worker awake at every moment."""
    if account.next_evaluation_at is not None and account.next_evaluation_at < now:
        await catch_up(session, [account], now)


async def _charging(session: AsyncSession, accounts: Sequence[Account]) -> set[str]:
    """The accounts with a charge in flight (made, its outcome not yet recorded)."""
    found = await session.scalars(
        select(PaymentAttempt.account_id).where(
            PaymentAttempt.tenant_id.in_({a.tenant_id for a in accounts}),
            PaymentAttempt.account_id.in_([a.id for a in accounts]),
            PaymentAttempt.status == "pending",
        )
    )
    return set(found)


async def catch_up(session: AsyncSession, accounts: Sequence[Account], now: datetime) -> int:
    """Process every due moment of each (locked) account up to ``now``, in time order and
    each as of its own instant. Returns the number of invoices issued.

    An account with a charge due (not yet made) or in flight waits: the charge's outcome
    comes first. (A crashed charge stays ``pending`` until the reconciler settles it,
    ``reconcile_after`` later.)
    """
    prefetched = await prefetch(session, accounts)
    books = _Books(session)
    charging = await _charging(session, accounts)
    invoices = 0
    for account in accounts:
        if account.id in charging or (account.collect_at is not None and account.collect_at <= now):
            continue
        tenant, book = await books.of(account)
        at: datetime | None = min(account.next_evaluation_at or now, now)
        repeats = 0
        while at is not None:
            invoices += await _process(session, tenant, book, account, at, prefetched)
            step = catch_up_step(
                processed=at,
                following=account.next_evaluation_at,
                now=now,
                charge_pending=account.collect_at is not None,
                repeats=repeats,
            )
            if step.stop == "no_progress":
                log.warning("scheduler.no_progress account=%s at=%s", account.id, at.isoformat())
                await _process(session, tenant, book, account, now, prefetched)
            repeats = repeats + 1 if step.at == at else 0
            at = step.at
    await session.flush()
    return invoices
