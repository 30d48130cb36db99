"""Recompute what an account may do from SQL, and owe the new record to Redis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.catalogs import CatalogBook, load_book
from billing_worker.db.models import Account, Invoice, Subscription, Tenant
from billing_worker.domain.catalog import Category
from billing_worker.domain.standing import (
    GracePolicy,
    RenewalOutlook,
    StandingResult,
    UnpaidInvoice,
    evaluate_standing,
)
from billing_worker.domain.subscriptions import (
    FOREVER,
    Terms,
    entitlement_spans,
    plan_on,
    quantity_on,
)
from billing_worker.invoicer import billed_accounts, local_midnight, local_today
from billing_worker.outbox import stage_record
from billing_worker.prefetch import Prefetched
from billing_worker.terms import terms_of
from shared.entitlement import EntitlementRecord
from shared.money import Money
from shared.states import SessionPolicy, Standing


@dataclass(frozen=True, slots=True)
class Access:
    """What an account's subscriptions grant today, and until when."""

    plan: str | None = None
    features: tuple[str, ...] = ()
    seat_limit: int | None = None
    session_policy: SessionPolicy = SessionPolicy.DENY_NEW
    #: When today's access ends by the subscriptions' own dates (None: it does not).
    ends_at: datetime | None = None
    #: The next moment a subscription's dates change what is granted.
    next_change_at: datetime | None = None


def _access(subs: Sequence[Subscription], book: CatalogBook, today: date, tz: str) -> Access:
    entitled = []
    boundaries: list[date] = []
    for sub in subs:
        terms = terms_of(sub)
        spans = entitlement_spans(terms, book.at)
        boundaries += [d for s in spans for d in (s.start, s.end) if d > today]
        boundaries += [c.effective for c in terms.changes if c.effective > today]
        boundaries += [q.effective for q in terms.quantities if q.effective > today]
        current = next((s for s in spans if today in s), None)
        if current is not None:
            entitled.append((terms, current))
    upcoming = min(boundaries, default=None)
    next_change = local_midnight(upcoming, tz) if upcoming and upcoming < FOREVER else None
    if not entitled:
        return Access(next_change_at=next_change)
    catalog = book.at(today)
    features: list[str] = []
    base = None
    for terms, _span in entitled:
        plan_name, _ = plan_on(terms, today)
        plan = book.at(today).plans.get(plan_name)
        if plan is None:
            continue
        features += [f for f in plan.entitlement.features if f not in features]
        if base is None and catalog.products[plan.product].category is not Category.ADD_ON:
            base = (plan, quantity_on(terms, today))
    end = max(span.end for _terms, span in entitled)
    ends_at = local_midnight(end, tz) if end < FOREVER else None
    if base is None:
        return Access(features=tuple(features), ends_at=ends_at, next_change_at=next_change)
    plan, quantity = base
    return Access(
        plan=plan.name,
        features=tuple(features),
        seat_limit=quantity if plan.per_seat else plan.entitlement.seat_limit,
        session_policy=SessionPolicy(plan.entitlement.session_policy),
        ends_at=ends_at,
        next_change_at=next_change,
    )


async def standing_source(session: AsyncSession, tenant: Tenant, account: Account) -> Account:
    """The account whose unpaid invoices decide ``account``'s standing."""
    if account.parent_id is None:
        return account
    parent = await session.get(Account, account.parent_id)
    if parent is None:
        return account
    if account.payment_delegated:
        return parent
    if parent.kind == "reseller" and tenant.channel_overdue == "follow":
        return parent
    return account


async def evaluate_account(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    now: datetime,
    *,
    book: CatalogBook | None = None,
    prefetched: Prefetched | None = None,
) -> tuple[StandingResult, Access]:
    """Run the standing rule and the entitlement view for one account on its SQL state."""
    subs: Sequence[Subscription]
    if prefetched is not None and account.id in prefetched.accounts:
        subs = prefetched.subscriptions.get(account.id, [])
    else:
        subs = (
            await session.scalars(
                select(Subscription).where(
                    Subscription.tenant_id == tenant.id, Subscription.account_id == account.id
                )
            )
        ).all()
    source = await standing_source(session, tenant, account)
    invoices: Sequence[Invoice]
    if prefetched is not None and source.id in prefetched.accounts:
        invoices = [i for i in prefetched.open_invoices.get(source.id, []) if i.status == "open"]
    else:
        invoices = (
            await session.scalars(
                select(Invoice).where(
                    Invoice.tenant_id == tenant.id,
                    Invoice.account_id == source.id,
                    Invoice.status == "open",
                )
            )
        ).all()
    unpaid = [
        UnpaidInvoice(
            invoice_id=inv.id,
            due_at=inv.due_at,
            balance=Money.from_minor(inv.total_minor - inv.paid_minor, inv.currency),
        )
        for inv in invoices
    ]
    access = Access()
    if subs:
        book = book or await load_book(session, tenant.id)
        access = _access(subs, book, local_today(now, account.timezone), account.timezone)
    renewals = []
    if source.next_bill_on is not None:
        renewals.append(
            RenewalOutlook(
                next_invoice_at=local_midnight(source.next_bill_on, source.timezone),
                net_terms=timedelta(days=source.net_terms_days),
            )
        )
    today = local_today(now, account.timezone)
    active = access.plan is not None or bool(access.features)
    result = evaluate_standing(
        unpaid=unpaid,
        renewals=renewals,
        has_active_subscription=active
        or await _pays_for_active(session, account, today, prefetched),
        paused=not active and any(_paused_on(terms_of(sub), today) for sub in subs),
        policy=GracePolicy(grace_days=tenant.grace_days),
        now=now,
    )
    return result, access


def _paused_on(terms: Terms, day: date) -> bool:
    return day < terms.entitlement_end and any(day in pause.span for pause in terms.pauses)


async def _pays_for_active(
    session: AsyncSession, account: Account, today: date, prefetched: Prefetched | None
) -> bool:
    """Whether ``account`` pays for another account's subscription that is still running
    (a parent for delegating children, a reseller for its customers): such a payer is in
    business, and judged by its invoices, even with no subscription of its own."""
    payer = await billed_accounts(session, account, prefetched)
    others = [a.id for a in payer if a.id != account.id]
    if not others:
        return False
    if prefetched is not None and prefetched.accounts.issuperset(others):
        return any(
            s.entitlement_end is None or s.entitlement_end > today
            for other in others
            for s in prefetched.subscriptions.get(other, [])
        )
    running = await session.scalar(
        select(Subscription.id)
        .where(
            Subscription.tenant_id == account.tenant_id,
            Subscription.account_id.in_(others),
            or_(Subscription.entitlement_end.is_(None), Subscription.entitlement_end > today),
        )
        .limit(1)
    )
    return running is not None


def _earliest(*moments: datetime | None) -> datetime | None:
    return min((m for m in moments if m is not None), default=None)


async def refresh_account(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    now: datetime,
    *,
    book: CatalogBook | None = None,
    prefetched: Prefetched | None = None,
) -> EntitlementRecord:
    """Re-evaluate the account, store its standing and stage the new record.

    The caller holds the account row (``lock_account``) so versions never collide.
    """
    result, access = await evaluate_account(
        session, tenant, account, now, book=book, prefetched=prefetched
    )
    account.ent_version += 1
    account.standing = result.standing.value
    account.standing_reason = result.reason
    valid_until = _earliest(result.access_until, access.ends_at)
    if not result.standing.grants_access:
        valid_until = None
    account.valid_until = valid_until
    next_bill = (
        local_midnight(account.next_bill_on, account.timezone) if account.next_bill_on else None
    )
    account.next_evaluation_at = _earliest(result.next_change_at, access.next_change_at, next_bill)
    record = EntitlementRecord(
        tenant_id=tenant.id,
        account_id=account.id,
        version=account.ent_version,
        standing=Standing(result.standing),
        reason=result.reason,
        valid_until=int(valid_until.timestamp()) if valid_until else None,
        seat_limit=access.seat_limit,
        session_policy=access.session_policy,
        features=access.features,
        plan=access.plan,
        read_only=result.standing is Standing.DEGRADED and tenant.degraded_read_only,
        session_idle_seconds=tenant.session_idle_seconds,
        fail_open_seconds=tenant.fail_open_seconds,
    )
    stage_record(session, record, now)
    return record


async def refresh_followers(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    now: datetime,
    *,
    book: CatalogBook | None = None,
    prefetched: Prefetched | None = None,
) -> None:
    """Re-publish the children whose standing follows ``account`` (locked parent first)."""
    children: Sequence[Account]
    if prefetched is not None and account.id in prefetched.accounts:
        children = prefetched.children.get(account.id, [])  # locked when prefetched
    else:
        children = (
            await session.scalars(
                select(Account)
                .where(Account.tenant_id == tenant.id, Account.parent_id == account.id)
                .order_by(Account.id)
                .with_for_update()
            )
        ).all()
    for child in children:
        if (await standing_source(session, tenant, child)).id == account.id:
            await refresh_account(session, tenant, child, now, book=book, prefetched=prefetched)


async def lock_account(session: AsyncSession, tenant_id: str, account_id: str) -> Account | None:
    """Load one account of one tenant, locked for update where the database can."""
    return await session.scalar(
        select(Account)
        .where(Account.tenant_id == tenant_id, Account.id == account_id)
        .with_for_update()
    )
