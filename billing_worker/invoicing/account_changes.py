"""Changing how an account is billed without moving what was billed: its billing cycle day
(from each subscription's next period) and its time zone (only before its first invoice)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import Account, Invoice, Subscription
from billing_worker.domain.changes import with_cycle_day
from billing_worker.invoicing.catalogs import load_book
from billing_worker.invoicing.invoicer import billed_accounts
from billing_worker.invoicing.terms import cycle_event, terms_of, touch_billing


class ChangeRefused(ValueError):
    """The change would rewrite what was already billed (the message says why)."""


async def change_cycle_day(session: AsyncSession, payer: Account, day: int, today: date) -> None:
    """Move ``payer``'s billing cycle day to ``day``.

    Each of its subscriptions keeps the period it is in; the next one starts where that
    period ends and runs to the first ``day`` after it (prorated), then periods fall on
    ``day``. Subscriptions with a cycle day of their own, or aligned on their anniversary,
    are not affected (``cycle_for``).
    """
    if payer.cycle_day == day:
        return
    members = await billed_accounts(session, payer)
    subscriptions = (
        await session.scalars(
            select(Subscription).where(
                Subscription.tenant_id == payer.tenant_id,
                Subscription.account_id.in_([a.id for a in members]),
                Subscription.cycle_day.is_(None),
            )
        )
    ).all()
    book = await load_book(session, payer.tenant_id) if subscriptions else None
    for sub in subscriptions:
        assert book is not None
        changed = with_cycle_day(terms_of(sub), book.at, today, payer.cycle_day, day)
        if changed is None:
            continue
        events: list[dict[str, Any]] = [e for e in sub.events if e["type"] != "cycle_day"]
        events += [cycle_event(c) for c in changed.cycle_changes]
        sub.events = events
        touch_billing(sub, changed.cycle_changes[-1].effective)
    payer.cycle_day = day


async def check_timezone_change(session: AsyncSession, account: Account) -> None:
    """A time zone decides the local dates of every invoice and due date: it can change
    only while the account has none."""
    invoices = await session.scalar(
        select(func.count())
        .select_from(Invoice)
        .where(Invoice.tenant_id == account.tenant_id, Invoice.account_id == account.id)
    )
    if invoices:
        raise ChangeRefused(
            "is fixed once the account has been invoiced (its invoice and due dates are "
            "local dates in this zone); create a new account to bill in another zone"
        )
