"""Subscribing an account to a plan (entitlement and billing may start apart; an add-on
joins its base), and reading a subscription as of its account's today."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import Account, Subscription
from billing_worker.domain.catalog import BillingAlignment, Catalog, Category
from billing_worker.domain.changes import add_on_allowed
from billing_worker.domain.moments import RealTime
from billing_worker.domain.statuses import SubscriptionStatus
from billing_worker.domain.subscriptions import first_paid_day, phase_on, plan_on
from billing_worker.ids import new_id
from billing_worker.invoicing.catalogs import NoCatalog, load_book
from billing_worker.invoicing.invoicer import local_today
from billing_worker.invoicing.terms import override_rows, terms_of
from billing_worker.services.errors import Conflict, InvalidRequest, NotFound
from billing_worker.services.families import book_of, lock_family, refuse_if_blocked
from billing_worker.services.negotiated import OverrideIn, negotiated
from billing_worker.services.settling import Settled, settle


class NewSubscription(Protocol):
    """A subscription as a request asks for it."""

    @property
    def plan(self) -> str: ...
    @property
    def price_list(self) -> str | None: ...
    @property
    def quantity(self) -> int: ...
    @property
    def start_date(self) -> date | None: ...
    @property
    def entitlement_start(self) -> date | None: ...
    @property
    def billing_start(self) -> date | None: ...
    @property
    def start_at(self) -> datetime | None: ...
    @property
    def cycle_day(self) -> int | None: ...
    @property
    def base_subscription_id(self) -> str | None: ...
    @property
    def external_id(self) -> str | None: ...
    @property
    def price_overrides(self) -> Sequence[OverrideIn] | None: ...
    @property
    def dry_run(self) -> bool: ...


async def subscribe(
    session: AsyncSession, tenant_id: str, account_id: str, new: NewSubscription, real: RealTime
) -> Settled:
    """Subscribe the account and settle what that bills today."""
    now = real.now
    tenant, account, payer = await lock_family(session, tenant_id, account_id, real)
    await refuse_if_blocked(session, tenant, account, now)
    today = local_today(now, account.timezone)
    entitlement_start, billing_start = _start_dates(new, today, account.timezone)
    book = await book_of(session, tenant.id)
    try:
        catalog = book.at(billing_start)
    except NoCatalog as exc:
        raise InvalidRequest.field("plan", str(exc)) from exc
    if new.plan not in catalog.plans:
        raise InvalidRequest.field("plan", f"the catalog has no plan {new.plan!r}")
    if not catalog.priced_in(new.plan, payer.currency):
        raise InvalidRequest.field("plan", f"plan {new.plan!r} has no price in {payer.currency}")
    price_list = new.price_list or "default"
    if not catalog.has_price_list(price_list):
        raise InvalidRequest.field("price_list", f"no price list {price_list!r}")
    plan = catalog.plan(new.plan)
    if new.quantity != 1 and not plan.per_seat:
        raise InvalidRequest.field("quantity", f"plan {new.plan!r} is not priced per seat")
    base_id = await _check_bundle(session, tenant.id, account, new, catalog, today)
    overrides = negotiated(catalog, new.plan, price_list, new.price_overrides, payer.currency)
    if new.external_id is not None:
        taken = await session.scalar(
            select(Subscription.id).where(
                Subscription.tenant_id == tenant.id, Subscription.external_id == new.external_id
            )
        )
        if taken:
            raise Conflict.field("external_id", f"subscription {new.external_id!r} exists")
    if payer.cycle_day is None and catalog.billing_alignment(new.plan) is BillingAlignment.ACCOUNT:
        payer.cycle_day = first_paid_day(catalog, new.plan, billing_start).day
    sub = Subscription(
        id=new_id("sub"),
        tenant_id=tenant.id,
        account_id=account.id,
        base_id=base_id,
        external_id=new.external_id,
        plan=new.plan,
        price_list=price_list,
        quantity=new.quantity,
        cycle_day=new.cycle_day,
        entitlement_start=entitlement_start,
        billing_start=billing_start,
        price_overrides=override_rows(overrides),
        events=[],
        status=SubscriptionStatus.ACTIVE,
        created_at=now,
    )
    session.add(sub)
    try:
        return await settle(session, tenant, account, payer, sub, now, dry_run=new.dry_run)
    except NoCatalog as exc:
        raise InvalidRequest.field("plan", str(exc)) from exc


def _start_dates(new: NewSubscription, today: date, tz: str) -> tuple[date, date]:
    if new.start_at is not None:
        if new.start_at.tzinfo is None:
            raise InvalidRequest.field("start_at", "needs a timezone, e.g. 2026-01-31T00:00:00Z")
        start = local_today(new.start_at, tz)
    else:
        start = new.start_date or today
    return new.entitlement_start or start, new.billing_start or start


async def _check_bundle(
    session: AsyncSession,
    tenant_id: str,
    account: Account,
    new: NewSubscription,
    catalog: Catalog,
    today: date,
) -> str | None:
    """The base an add-on joins (None for a base plan), refused when the bundle's rules do
    not allow it."""
    product = catalog.product_of(new.plan)
    if product.category is not Category.ADD_ON:
        if new.base_subscription_id is not None:
            raise InvalidRequest.field("base_subscription_id", "only add-ons have a base")
        return None
    if new.base_subscription_id is None:
        raise InvalidRequest.field("base_subscription_id", f"{new.plan!r} is an add-on")
    base = await session.scalar(
        select(Subscription).where(
            Subscription.tenant_id == tenant_id,
            Subscription.account_id == account.id,
            Subscription.id == new.base_subscription_id,
        )
    )
    if base is None:
        raise InvalidRequest.field("base_subscription_id", "no such subscription on this account")
    base_plan, _ = plan_on(terms_of(base), today)
    why = add_on_allowed(catalog, base_plan, new.plan)
    if why is not None:
        raise InvalidRequest.field("plan", why)
    if product.max_per_bundle is not None:
        siblings = await session.scalar(
            select(func.count())
            .select_from(Subscription)
            .where(
                Subscription.tenant_id == tenant_id,
                Subscription.base_id == base.id,
                Subscription.plan.in_(
                    [p.name for p in catalog.plans.values() if p.product == product.name]
                ),
                Subscription.entitlement_end.is_(None),
            )
        )
        if (siblings or 0) >= product.max_per_bundle:
            raise InvalidRequest.field(
                "plan", f"at most {product.max_per_bundle} {product.name!r} per base subscription"
            )
    return base.id


async def subscription_today(
    session: AsyncSession, tenant_id: str, subscription_id: str, now: datetime
) -> tuple[Subscription, date, str | None]:
    """A subscription of the tenant, its account's today and the phase it is in then."""
    sub = await session.scalar(
        select(Subscription).where(
            Subscription.tenant_id == tenant_id, Subscription.id == subscription_id
        )
    )
    if sub is None:
        raise NotFound(f"no subscription {subscription_id!r}")
    account = await session.get(Account, sub.account_id)
    assert account is not None
    today = local_today(now, account.timezone)
    book = await load_book(session, sub.tenant_id)
    phase = phase_on(terms_of(sub), book.at, today)
    return sub, today, phase.value if phase else None


async def subscriptions_of(
    session: AsyncSession, account: Account, now: datetime
) -> list[tuple[Subscription, date, str | None]]:
    """The account's subscriptions (ended ones too), oldest first, each with the account's
    today and its phase then."""
    subscriptions = (
        await session.scalars(
            select(Subscription)
            .where(Subscription.tenant_id == account.tenant_id,
                   Subscription.account_id == account.id)
            .order_by(Subscription.created_at, Subscription.id)
        )
    ).all()  # fmt: skip
    today = local_today(now, account.timezone)
    if not subscriptions:
        return []
    book = await load_book(session, account.tenant_id)
    out = []
    for sub in subscriptions:
        phase = phase_on(terms_of(sub), book.at, today)
        out.append((sub, today, phase.value if phase else None))
    return out
