"""Holding what a change changes: an account with its bill-to parent (parent first, the
order every writer uses), brought up to now; a subscription with its family; and what
refuses a change before it starts (a dunning stage that blocks changes, no catalog yet)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.locking import lock_account, lock_with_parent
from billing_worker.db.models import Account, Subscription, Tenant
from billing_worker.domain.moments import RealTime
from billing_worker.invoicing.catalogs import CatalogBook, load_book
from billing_worker.invoicing.invoicer import bill_to
from billing_worker.jobs.catch_up import bring_up_to
from billing_worker.services.errors import ChangesBlocked, FieldError, InvalidRequest, NotFound
from billing_worker.standing.evaluation import evaluate_account


async def lock_family(
    session: AsyncSession, tenant_id: str, account_id: str, real: RealTime | None = None
) -> tuple[Tenant, Account, Account]:
    """The tenant, the account and the account that pays for it, locked parent first; with
    ``real``, both brought up to its now first (``catch_up.bring_up_to``)."""
    account = await lock_with_parent(session, tenant_id, account_id)
    tenant = await session.get(Tenant, tenant_id)
    if account is None or tenant is None:
        raise NotFound(f"no account {account_id!r}")
    payer = await bill_to(session, account)
    if real is not None:
        for member in dict.fromkeys((payer, account)):
            await bring_up_to(session, member, real.now, real=real)
    return tenant, account, payer


@dataclass(frozen=True, slots=True)
class Target:
    """The subscription a change is made to, and the real time it is made at."""

    tenant_id: str
    subscription_id: str
    real: RealTime


async def lock_subscription(
    session: AsyncSession, target: Target
) -> tuple[Tenant, Account, Account, Subscription]:
    """A subscription of the tenant with its account's family locked and brought up to now."""
    tenant_id, subscription_id, real = target.tenant_id, target.subscription_id, target.real
    account_id = await session.scalar(
        select(Subscription.account_id).where(
            Subscription.tenant_id == tenant_id, Subscription.id == subscription_id
        )
    )
    if account_id is None:
        raise NotFound(f"no subscription {subscription_id!r}")
    tenant, account, payer = await lock_family(session, tenant_id, account_id, real)
    sub = await session.get(Subscription, subscription_id)
    assert sub is not None
    return tenant, account, payer, sub


async def add_ons(session: AsyncSession, sub: Subscription) -> list[Subscription]:
    """The add-ons bundled on a base subscription."""
    query = select(Subscription).where(
        Subscription.tenant_id == sub.tenant_id, Subscription.base_id == sub.id
    )
    return list((await session.scalars(query)).all())


async def refuse_if_blocked(
    session: AsyncSession, tenant: Tenant, account: Account, now: datetime
) -> None:
    """Refuse a change while the account's dunning stage blocks changes."""
    found = await evaluate_account(session, tenant, account, now)
    ladder = found.result.dunning
    if ladder is None or not ladder.blocks_changes:
        return
    reason = (
        f"the account is {found.result.standing} ({ladder.days_past_due} days past due) and "
        f"dunning policy {found.policy_name!r} blocks plan changes, quantity changes and new "
        "subscriptions at that stage until what is overdue is paid"
    )
    raise ChangesBlocked(f"account: {reason}", errors=[FieldError("account", reason)])


async def book_of(session: AsyncSession, tenant_id: str) -> CatalogBook:
    """The tenant's catalog versions; refused when it has none yet."""
    book = await load_book(session, tenant_id)
    if not book.versions:
        raise InvalidRequest.field("plan", "the tenant has no catalog yet: PUT /v1/catalog")
    return book


async def lock_account_now(
    session: AsyncSession, tenant_id: str, account_id: str, real: RealTime
) -> tuple[Tenant, Account]:
    """The tenant and its account, locked and brought up to now (its parent not held)."""
    account = await lock_account(session, tenant_id, account_id)
    tenant = await session.get(Tenant, tenant_id)
    if account is None or tenant is None:
        raise NotFound(f"no account {account_id!r}")
    await bring_up_to(session, account, real.now, real=real)
    return tenant, account
