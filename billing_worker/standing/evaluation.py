"""Evaluating an account's standing from SQL: its access from its subscriptions, its
unpaid invoices, its dunning policy and what it pays for; nothing is written."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import (
    Account,
    Subscription,
    Tenant,
)
from billing_worker.domain.catalog import Category
from billing_worker.domain.dunning import (
    DunningPolicy,
    LastCharge,
    classic_with,
    policy_from_document,
)
from billing_worker.domain.publication import Access
from billing_worker.domain.standing import (
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
from billing_worker.invoicing import prefetch
from billing_worker.invoicing.catalogs import CatalogBook, load_book
from billing_worker.invoicing.invoicer import local_midnight, local_today, paid_for
from billing_worker.invoicing.prefetch import Prefetched
from billing_worker.invoicing.terms import terms_of
from shared.money import Money
from shared.states import SessionPolicy


def access_of(subs: Sequence[Subscription], book: CatalogBook, today: date, tz: str) -> Access:
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
        dunning_policy=plan.dunning_policy,
    )


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What ``evaluate_account`` found: the standing, the access, and what it rests on."""

    result: StandingResult
    access: Access
    #: The account whose invoices decide the standing (itself, or the parent it follows).
    source: Account
    subscriptions: Sequence[Subscription]
    unpaid: Sequence[UnpaidInvoice]
    policy_name: str
    policy: DunningPolicy


@functools.lru_cache(maxsize=256)
def _parsed_policy(document: bytes, currency: str) -> DunningPolicy:
    return policy_from_document(orjson.loads(document), currency)


def policy_for(
    tenant: Tenant, account: Account, plan_policy: str | None
) -> tuple[str, DunningPolicy]:
    """The account's named policy, else its plan's, else the tenant's default, else the
    classic ladder with the tenant's ``grace_days`` (named "classic")."""
    policies: dict[str, Any] = tenant.dunning_policies or {}
    for name in (account.dunning_policy, plan_policy, "default"):
        if name is not None and name in policies:
            document = orjson.dumps(policies[name], option=orjson.OPT_SORT_KEYS)
            return name, _parsed_policy(document, account.currency)
    return "classic", classic_with(tenant.grace_days)


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
) -> Evaluation:
    """Run the standing rule and the entitlement view for one account on its SQL state."""
    subs = await prefetch.subscriptions(session, account, prefetched)
    source = await standing_source(session, tenant, account)
    invoices = await prefetch.open_invoices(session, source, prefetched)
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
        access = access_of(subs, book, local_today(now, account.timezone), account.timezone)
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
    policy_name, policy = policy_for(tenant, source, access.dunning_policy)
    result = evaluate_standing(
        unpaid=unpaid,
        renewals=renewals,
        has_active_subscription=active
        or await _pays_for_active(session, account, today, prefetched),
        paused=not active and any(paused_on(terms_of(sub), today) for sub in subs),
        policy=policy,
        now=now,
        hard_declined=source.hard_declined,
        exempt=account.dunning_exempt or source.dunning_exempt,
        suspended_manually=account.suspended_manually or source.suspended_manually,
        last_charge=last_charge_of(source),
    )
    return Evaluation(result, access, source, subs, unpaid, policy_name, policy)


def last_charge_of(account: Account) -> LastCharge | None:
    if account.charged_retry is None or account.charged_at is None:
        return None
    return LastCharge(retry=account.charged_retry, at=account.charged_at)


def paused_on(terms: Terms, day: date) -> bool:
    return day < terms.entitlement_end and any(day in pause.span for pause in terms.pauses)


async def _pays_for_active(
    session: AsyncSession, account: Account, today: date, prefetched: Prefetched | None
) -> bool:
    """Whether ``account`` pays for another account's subscription that is still running
    (a parent for delegating children, a reseller for its customers): such a payer is in
    business, and judged by its invoices, even with no subscription of its own."""
    others = [a.id for a in await paid_for(session, account, prefetched)]
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
