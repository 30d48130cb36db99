"""Settling a change: what it bills, at once, and the access it re-publishes -- or, on a dry
run, what it would bill, with nothing kept.

A change runs in one transaction (``run``): the service changes what it must and settles it
(``settle``: the paying account is invoiced to today, and it, the account and the children
that follow it are re-published); the caller's ``view`` renders the outcome while the
transaction's objects are live, and a dry run then rolls everything back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.models import Account, Subscription, Tenant
from billing_worker.domain.subscriptions import phase_on
from billing_worker.invoicing.catalogs import load_book
from billing_worker.invoicing.invoicer import invoice_account, local_today
from billing_worker.invoicing.terms import terms_of
from billing_worker.services.invoices import Billed, billed
from billing_worker.standing.entitlements import refresh_account, refresh_followers

R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Settled:
    """A subscription after a change, as of the account's today, and what it billed."""

    subscription: Subscription
    today: date
    phase: str | None
    billed: Billed


class _DryRun(Exception):
    def __init__(self, rendered: object) -> None:
        self.rendered = rendered


async def settle(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    payer: Account,
    sub: Subscription,
    now: datetime,
    *,
    dry_run: bool,
) -> Settled:
    """Invoice the paying account to today and, unless this is a dry run, re-publish it, the
    account and the children that follow it."""
    await session.flush()
    invoice = await invoice_account(session, tenant, payer, now)
    book = await load_book(session, tenant.id)
    today = local_today(now, account.timezone)
    phase = phase_on(terms_of(sub), book.at, today)
    settled = Settled(sub, today, phase.value if phase else None,
                      await billed(session, invoice, payer))  # fmt: skip
    if not dry_run:
        await refresh_account(session, tenant, payer, now)
        if payer.id != account.id:
            await refresh_account(session, tenant, account, now)
        await refresh_followers(session, tenant, payer, now)
    return settled


async def run(
    sessions: async_sessionmaker[AsyncSession],
    change: Callable[[AsyncSession], Awaitable[R]],
    view: Callable[[R], T],
    *,
    dry_run: bool,
) -> T:
    """Make ``change`` in a transaction and return its outcome as ``view`` renders it; a
    dry run renders it and then rolls everything back."""
    try:
        async with sessions() as session, session.begin():
            rendered = view(await change(session))
            if dry_run:
                raise _DryRun(rendered)
    except _DryRun as dry:
        return dry.rendered  # type: ignore[return-value]  # what ``view`` returned
    return rendered
