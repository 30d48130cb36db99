"""What invoicing and re-evaluating a batch of accounts reads, loaded in a few queries.

Invoicing one account reads its children, their subscriptions, the items already billed,
usage and open invoices: a handful of round trips each. A batch job (the scheduler, an
invoice run) loads all of it for the whole batch at once and hands the result to the
invoicer and to the entitlement refresh, which then query only for what is missing.
Rows come from the same session, so changes made while the batch is processed (a new
invoice, credit applied) are seen by whatever reads them next.

The queries select by the batch's own ids (accounts, then their subscriptions) and check
the tenant on each row in Python: a ``tenant_id IN (…)`` condition in SQL lets a planner
without statistics (SQLite) walk the whole tenant's index instead of the ids', which made
every batch cost as much as the tenant is large.

What the rest of the worker reads through a batch is read by the functions at the end of
this module (``children``, ``subscriptions``, ``open_invoices``): the batch's rows when it
read that account, else a query -- the one place that choice is made.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import (
    Account,
    Invoice,
    InvoiceItem,
    Message,
    PaymentMethod,
    Subscription,
    UsageRecord,
)
from billing_worker.domain.statuses import InvoiceStatus


@dataclass(slots=True)
class Prefetched:
    #: Children by parent id, locked for update (their records may be re-published).
    children: dict[str, list[Account]] = field(default_factory=lambda: defaultdict(list))
    #: Subscriptions by account id, oldest first.
    subscriptions: dict[str, list[Subscription]] = field(default_factory=lambda: defaultdict(list))
    #: Items on invoices that are not void, by subscription id.
    items: dict[str, list[InvoiceItem]] = field(default_factory=lambda: defaultdict(list))
    usage: dict[str, list[UsageRecord]] = field(default_factory=lambda: defaultdict(list))
    #: Open invoices by account id; the invoicer adds the ones it issues.
    open_invoices: dict[str, list[Invoice]] = field(default_factory=lambda: defaultdict(list))
    #: Accounts with a default payment method the collector can charge.
    chargeable: set[str] = field(default_factory=set)
    #: Dedup keys of the accounts' recent advisory messages (see ``MESSAGE_LOOKBACK``).
    message_keys: set[str] = field(default_factory=set)
    #: Every account id the lists above are complete for.
    accounts: set[str] = field(default_factory=set)


#: How far before a batch's earliest moment a message can share a key with one it writes:
#: a reminder's key names the first day of its window, and windows last at most a year.
#: Other keys name a version or a charge, never written twice.
MESSAGE_LOOKBACK = timedelta(days=366)


def children_of(ids: Sequence[str]) -> Select[Account]:
    """The accounts whose parent is one of ``ids``, locked."""
    return select(Account).where(Account.parent_id.in_(ids)).order_by(Account.id).with_for_update()


async def prefetch(session: AsyncSession, accounts: Sequence[Account]) -> Prefetched:
    """Load what a batch of (locked) accounts and their children will read."""
    out = Prefetched()
    ids = [a.id for a in accounts]
    if not ids:
        return out
    tenants = {a.tenant_id for a in accounts}
    children = (await session.scalars(children_of(ids))).all()
    for child in _of(tenants, children):
        assert child.parent_id is not None
        out.children[child.parent_id].append(child)
    out.accounts = set(ids) | {c.id for c in _of(tenants, children)}
    subs = (
        await session.scalars(
            select(Subscription)
            .where(Subscription.account_id.in_(out.accounts))
            .order_by(Subscription.created_at, Subscription.id)
        )
    ).all()
    subs = _of(tenants, subs)
    for sub in subs:
        out.subscriptions[sub.account_id].append(sub)
    sub_ids = [s.id for s in subs]
    if sub_ids:
        # The invoicer looks back from each subscription's reconcile_from; load from the
        # earliest of them (everything when one has never been reconciled).
        froms = [s.reconcile_from for s in subs]
        since = None if None in froms else min(f for f in froms if f is not None)
        items = (
            select(InvoiceItem)
            .where(InvoiceItem.subscription_id.in_(sub_ids))
            .order_by(InvoiceItem.start_date, InvoiceItem.id)
        )
        if since is not None:
            items = items.where(InvoiceItem.end_date > since)
        found = _of(tenants, (await session.scalars(items)).all())
        # Voided invoices' items are looked up by primary key rather than joined: the
        # join was planned as a hash join over every invoice, a full scan per batch.
        void = await _void_invoices(session, {item.invoice_id for item in found})
        for item in found:
            assert item.subscription_id is not None
            if item.invoice_id not in void:
                out.items[item.subscription_id].append(item)
        usage = select(UsageRecord).where(UsageRecord.subscription_id.in_(sub_ids))
        for record in _of(tenants, (await session.scalars(usage)).all()):
            out.usage[record.subscription_id].append(record)
    open_invoices = select(Invoice).where(
        Invoice.account_id.in_(out.accounts), Invoice.status == InvoiceStatus.OPEN
    )
    for invoice in _of(tenants, (await session.scalars(open_invoices)).all()):
        out.open_invoices[invoice.account_id].append(invoice)
    methods = select(PaymentMethod).where(
        PaymentMethod.account_id.in_(out.accounts),
        PaymentMethod.is_default.is_(True),
        PaymentMethod.removed_at.is_(None),
    )
    out.chargeable = {m.account_id for m in _of(tenants, (await session.scalars(methods)).all())}
    moments = [a.next_evaluation_at for a in accounts if a.next_evaluation_at is not None]
    since = min(moments, default=datetime.now(UTC)) - MESSAGE_LOOKBACK
    keys = select(Message.dedup_key).where(
        Message.account_id.in_(out.accounts), Message.created_at >= since
    )
    out.message_keys = set(await session.scalars(keys))
    return out


async def _void_invoices(session: AsyncSession, invoice_ids: set[str]) -> set[str]:
    ids, void = sorted(invoice_ids), set[str]()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        query = select(Invoice.id).where(
            Invoice.id.in_(chunk), Invoice.status == InvoiceStatus.VOID
        )
        void.update(await session.scalars(query))
    return void


_CHUNK = 1000


class _Owned(Protocol):
    tenant_id: str


R = TypeVar("R", bound=_Owned)


def _of(tenants: set[str], rows: Sequence[R]) -> list[R]:
    """Only the rows of the batch's tenants (ids are unique, so this never drops one in
    practice; it keeps isolation explicit)."""
    return [row for row in rows if row.tenant_id in tenants]


def _covers(prefetched: Prefetched | None, account: Account) -> bool:
    return prefetched is not None and account.id in prefetched.accounts


async def children(
    session: AsyncSession,
    account: Account,
    prefetched: Prefetched | None = None,
    *,
    lock: bool = False,
) -> Sequence[Account]:
    """The account's children, in id order (a batch's are locked; a query locks them when
    ``lock`` says so)."""
    if _covers(prefetched, account):
        assert prefetched is not None
        return prefetched.children.get(account.id, [])
    query = (
        select(Account)
        .where(Account.tenant_id == account.tenant_id, Account.parent_id == account.id)
        .order_by(Account.id)
    )
    return (await session.scalars(query.with_for_update() if lock else query)).all()


async def subscriptions(
    session: AsyncSession, account: Account, prefetched: Prefetched | None = None
) -> Sequence[Subscription]:
    """The account's subscriptions."""
    if _covers(prefetched, account):
        assert prefetched is not None
        return prefetched.subscriptions.get(account.id, [])
    query = select(Subscription).where(
        Subscription.tenant_id == account.tenant_id, Subscription.account_id == account.id
    )
    return (await session.scalars(query)).all()


async def open_invoices(
    session: AsyncSession, account: Account, prefetched: Prefetched | None = None
) -> Sequence[Invoice]:
    """The account's open invoices (a batch's list keeps those it issued; one paid since is
    left out)."""
    if _covers(prefetched, account):
        assert prefetched is not None
        listed = prefetched.open_invoices.get(account.id, [])
        return [i for i in listed if i.status == InvoiceStatus.OPEN]
    query = select(Invoice).where(
        Invoice.tenant_id == account.tenant_id,
        Invoice.account_id == account.id,
        Invoice.status == InvoiceStatus.OPEN,
    )
    return (await session.scalars(query)).all()
