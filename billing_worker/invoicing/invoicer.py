"""Invoicing an account: the domain's reconciliation, wrapped with SQL.

The caller holds the bill-to account's row lock (``lock_account``), so two invoicing
runs of one account serialize; everything an invoice changes (the invoice, its items, the
account's credit, the next billing day) commits together, so a crash bills nothing and a
re-run bills only what is still missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import (
    Account,
    Invoice,
    InvoiceItem,
    Subscription,
    Tenant,
    UsageRecord,
)
from billing_worker.domain.calendar import Span
from billing_worker.domain.catalog import PhaseType
from billing_worker.domain.invoicing import (
    Billing,
    Item,
    ItemKind,
    assemble,
    by_billing_day,
    next_items,
)
from billing_worker.domain.invoicing import (
    UsageRecord as DomainUsage,
)
from billing_worker.domain.moments import RealTime
from billing_worker.domain.statuses import InvoiceStatus
from billing_worker.ids import new_id
from billing_worker.invoicing import budget, prefetch
from billing_worker.invoicing.catalogs import CatalogBook, load_book
from billing_worker.invoicing.ledger import apply_account_credit
from billing_worker.invoicing.prefetch import Prefetched
from billing_worker.invoicing.terms import terms_of
from shared.money import Money

#: How far back an invoicing run looks once a subscription is billed (a year and a bit:
#: longer than any billing period, so a repair always finds the item it credits).
LOOKBACK = timedelta(days=400)


def local_today(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def local_midnight(day: date, timezone: str) -> datetime:
    """The UTC instant at which ``day`` begins in ``timezone``."""
    return datetime.combine(day, time(), ZoneInfo(timezone)).astimezone(UTC)


async def bill_to(session: AsyncSession, account: Account) -> Account:
    """The account whose invoices carry ``account``'s charges: a reseller's for its
    customers (billed wholesale), else the account's own -- a child that delegates payment
    keeps its own invoices, which its parent pays through a summary (``summaries``)."""
    if account.parent_id is None:
        return account
    parent = await session.get(Account, account.parent_id)
    if parent is None or parent.tenant_id != account.tenant_id:
        raise LookupError(f"account {account.id} names a missing parent")
    return parent if parent.kind == "reseller" else account


async def billed_accounts(
    session: AsyncSession, account: Account, prefetched: Prefetched | None = None
) -> list[Account]:
    """The accounts whose subscriptions ``account`` is invoiced for (itself first; a
    reseller's customers after it)."""
    if account.kind != "reseller":
        return [account]
    return [account, *await prefetch.children(session, account, prefetched)]


async def paid_for(
    session: AsyncSession, account: Account, prefetched: Prefetched | None = None
) -> list[Account]:
    """The other accounts ``account`` pays for: a reseller's customers, or the children
    that delegate payment to it."""
    children = await prefetch.children(session, account, prefetched)
    return [c for c in children if c.payment_delegated or account.kind == "reseller"]


def _item_of(row: InvoiceItem) -> Item:
    return Item(
        kind=ItemKind(row.kind),
        amount=Money.from_minor(row.amount_minor, row.currency),
        span=Span(row.start_date, row.end_date),
        subscription_id=row.subscription_id,
        rate=row.rate,
        plan=row.plan,
        phase=PhaseType(row.phase) if row.phase else None,
        quantity=row.quantity,
        linked_to=row.linked_item_id,
        id=row.id,
    )


#: Usage older than this before ``since`` cannot fall in a period still being billed.
USAGE_LOOKBACK = timedelta(days=366)


async def _existing(
    session: AsyncSession,
    tenant_id: str,
    sub_ids: Sequence[str],
    since: date | None,
    prefetched: Prefetched | None,
) -> list[Item]:
    """Items already on invoices that are not void, from the batch's prefetch or SQL."""
    rows: Sequence[InvoiceItem]
    if prefetched is not None:
        rows = sorted(
            (r for i in sub_ids for r in prefetched.items.get(i, [])),
            key=lambda r: (r.start_date, r.id),
        )
        rows = [r for r in rows if since is None or r.end_date > since]
    else:
        query = (
            select(InvoiceItem)
            .join(Invoice, Invoice.id == InvoiceItem.invoice_id)
            .where(
                InvoiceItem.tenant_id == tenant_id,
                InvoiceItem.subscription_id.in_(sub_ids),
                Invoice.status != InvoiceStatus.VOID,
            )
            .order_by(InvoiceItem.start_date, InvoiceItem.id)
        )
        if since is not None:
            query = query.where(InvoiceItem.end_date > since)
        rows = (await session.scalars(query)).all()
    return [_item_of(row) for row in rows]


async def _usage(
    session: AsyncSession,
    tenant_id: str,
    sub_ids: Sequence[str],
    since: date | None,
    prefetched: Prefetched | None,
) -> list[DomainUsage]:
    rows: Sequence[UsageRecord]
    if prefetched is not None:
        rows = [
            r
            for i in sub_ids
            for r in prefetched.usage.get(i, [])
            if since is None or r.day >= since - USAGE_LOOKBACK
        ]
    else:
        query = select(UsageRecord).where(
            UsageRecord.tenant_id == tenant_id, UsageRecord.subscription_id.in_(sub_ids)
        )
        if since is not None:
            query = query.where(UsageRecord.day >= since - USAGE_LOOKBACK)
        rows = (await session.scalars(query)).all()
    return [DomainUsage(r.subscription_id, r.name, r.day, r.units) for r in rows]


async def invoice_account(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    now: datetime,
    *,
    target: date | None = None,
    book: CatalogBook | None = None,
    prefetched: Prefetched | None = None,
    resumed_on: date | None = None,
    real: RealTime | None = None,
) -> Invoice | None:
    """Invoice a bill-to account for everything billable up to ``target`` (default today),
    as of ``now``. With ``real`` (the catch-up) the invoices are recorded as issued when
    the worker really issues them, and one whose billing day the worker reached late
    (after an outage) is dated and due from the day it is really issued
    (``domain.moments.RealTime``); without, they are issued ``now``, on their billing days.

    Returns the new invoice, or None when nothing is owed or credited, or when the
    account's invoicing is held. With ``resumed_on`` (invoicing resuming that day, or a
    held account's preview of it) what became billable before that day goes on its invoice.
    With ``prefetched`` (a batch job) it reads from there and leaves writing to the batch's
    flush.
    """
    if account.invoicing == "held" and resumed_on is None:
        account.next_bill_on = None  # nothing comes due until invoicing resumes
        return None
    accounts = await billed_accounts(session, account, prefetched)
    if prefetched is not None and not prefetched.accounts.issuperset(a.id for a in accounts):
        prefetched = None  # not one of the batch's accounts: read everything from SQL
    subs = await _subscriptions(session, tenant.id, [a.id for a in accounts], prefetched)
    day = target or local_today(now, account.timezone)
    if not subs:
        account.next_bill_on = None
        return None
    book = book or await load_book(session, tenant.id)
    froms = [s.reconcile_from for s in subs]
    since = None if any(f is None for f in froms) else min(f for f in froms if f is not None)
    sub_ids = [s.id for s in subs]
    existing = await _existing(session, tenant.id, sub_ids, since, prefetched)
    usage = await _usage(session, tenant.id, sub_ids, since, prefetched)
    items, next_on = next_items(
        [Billing(terms_of(s), account.price_list) for s in subs],
        book.at,
        existing=existing,
        currency=account.currency,
        account_cycle_day=account.cycle_day,
        target=day,
        since=since,
        usage=usage,
        zero_amounts=tenant.zero_amount_invoices,
    )
    groups = by_billing_day(items, day, resumed_on=resumed_on)
    budget.check(len(groups), len(items))  # a request bills only so much while it waits
    account.next_bill_on = next_on
    for sub in subs:
        sub.reconcile_from = max(sub.reconcile_from or date.min, day - LOOKBACK)
    latest: Invoice | None = None
    for bill_day, group in groups:
        issued_at, late = now, False
        if real is not None:
            issued_at = real.seen_at(now)
            late = real.late(min(now, local_midnight(bill_day, account.timezone)))
        issued = await _issue(
            session, tenant, account, group, bill_day, issued_at, prefetched, late=late
        )
        latest = issued or latest
    return latest


async def _subscriptions(
    session: AsyncSession,
    tenant_id: str,
    account_ids: Sequence[str],
    prefetched: Prefetched | None,
) -> list[Subscription]:
    if prefetched is not None:
        found = [s for a in account_ids for s in prefetched.subscriptions.get(a, [])]
        return sorted(found, key=lambda s: (s.created_at, s.id))
    return list(
        (
            await session.scalars(
                select(Subscription)
                .where(
                    Subscription.tenant_id == tenant_id, Subscription.account_id.in_(account_ids)
                )
                .order_by(Subscription.created_at, Subscription.id)
            )
        ).all()
    )


async def _issue(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    items: Sequence[Item],
    day: date,
    now: datetime,
    prefetched: Prefetched | None = None,
    *,
    late: bool = False,
) -> Invoice | None:
    credit = Money.from_minor(account.credit_minor, account.currency)
    draft = assemble(items, credit=credit, day=day)
    if draft is None:
        return None
    reviewed = tenant.draft_invoices or account.invoicing == "draft"
    status = "draft" if reviewed else ("open" if draft.total.is_positive() else "paid")
    invoice = new_invoice(account, day, now, total=draft.total, status=status, late=late)
    session.add(invoice)
    if prefetched is None:
        await session.flush()
    for item in draft.items:
        row = item_row(item, invoice)
        session.add(row)
        if prefetched is not None and row.subscription_id is not None:
            # a later moment of the same batch must see what this one billed
            prefetched.items[row.subscription_id].append(row)
    account.credit_minor = draft.credit_after.minor
    if prefetched is None:
        await session.flush()
    elif status == InvoiceStatus.OPEN:
        prefetched.open_invoices[account.id].append(invoice)
    if account.payment_delegated and account.parent_id is not None:
        if status == InvoiceStatus.OPEN:  # the parent sums it up into its summary now
            parent = await session.get(Account, account.parent_id)
            if parent is not None:
                parent.next_evaluation_at = min(parent.next_evaluation_at or now, now)
    elif status != InvoiceStatus.DRAFT:
        await apply_account_credit(session, account)
    return invoice


def new_invoice(
    account: Account,
    day: date,
    now: datetime,
    *,
    total: Money,
    status: str,
    is_summary: bool = False,
    late: bool = False,
) -> Invoice:
    """An invoice of ``account`` issued ``now`` for what became billable on ``day``, dated
    that day and due after its terms from it; issued ``late`` (a worker catching up after
    an outage), dated the day it is really issued: nobody owes an invoice from before they
    received it. The items keep their service periods either way."""
    dated = max(day, local_today(now, account.timezone)) if late else day
    return Invoice(
        id=new_id("inv"),
        tenant_id=account.tenant_id,
        account_id=account.id,
        invoice_date=dated,
        issued_at=now,
        due_at=local_midnight(dated + timedelta(days=account.net_terms_days), account.timezone),
        currency=account.currency,
        total_minor=total.minor,
        paid_minor=0,
        status=status,
        is_summary=is_summary,
    )


def item_row(item: Item, invoice: Invoice) -> InvoiceItem:
    """The stored line of ``item`` on ``invoice`` (the one place items become rows)."""
    return InvoiceItem(
        id=new_id("ii"),
        tenant_id=invoice.tenant_id,
        invoice_id=invoice.id,
        account_id=invoice.account_id,
        subscription_id=item.subscription_id,
        kind=item.kind.value,
        start_date=item.span.start,
        end_date=item.span.end,
        amount_minor=item.amount.minor,
        currency=item.amount.currency,
        rate=item.rate,
        plan=item.plan,
        phase=item.phase.value if item.phase else None,
        quantity=item.quantity,
        linked_item_id=item.linked_to,
    )


async def commit_invoice(
    session: AsyncSession, account: Account, invoice: Invoice, now: datetime
) -> None:
    """Issue a draft: it becomes due from today and account credit pays what it can."""
    if invoice.status != InvoiceStatus.DRAFT:
        raise ValueError(f"invoice {invoice.id} is {invoice.status}, not a draft")
    day = local_today(now, account.timezone)
    invoice.issued_at = now
    invoice.due_at = local_midnight(day + timedelta(days=account.net_terms_days), account.timezone)
    invoice.status = InvoiceStatus.OPEN if invoice.total_minor > 0 else InvoiceStatus.PAID
    await session.flush()
    await apply_account_credit(session, account)


async def open_drafts(session: AsyncSession, account: Account) -> list[Invoice]:
    return list(
        (
            await session.scalars(
                select(Invoice).where(
                    Invoice.tenant_id == account.tenant_id,
                    Invoice.account_id == account.id,
                    Invoice.status == InvoiceStatus.DRAFT,
                )
            )
        ).all()
    )
