"""Changing an account: its details, collection and invoicing, time zone and cycle day; and
its standing by hand -- a manual suspension and its lifting, an exemption from dunning for
the account or one subscription. Each change re-publishes the account's family."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.locking import lock_account
from billing_worker.db.models import Account, StandingChange, Subscription, Tenant
from billing_worker.domain.moments import RealTime
from billing_worker.invoicing.account_changes import (
    ChangeRefused,
    change_cycle_day,
    check_timezone_change,
)
from billing_worker.invoicing.invoicer import bill_to, invoice_account, local_today
from billing_worker.services.accounts import invoiced_by_parent, is_time_zone
from billing_worker.services.errors import Conflict, InvalidRequest, NotFound
from billing_worker.services.families import lock_account_now
from billing_worker.standing.entitlements import refresh_family

#: The flags on an account a person sets by hand.
FLAGS = frozenset(("suspended_manually", "dunning_exempt"))
#: At most this many changes of standing are listed.
HISTORY_LISTED = 1000


async def _invoiced_itself(session: AsyncSession, account: Account, field: str) -> None:
    """Refuse a change of ``field`` that only the account invoiced in its place can take."""
    payer = await bill_to(session, account)
    if payer.id != account.id:
        raise InvalidRequest.field(field, invoiced_by_parent(payer.id, field))


async def update_account(
    session: AsyncSession,
    tenant_id: str,
    account_id: str,
    real: RealTime,
    changes: Mapping[str, Any],
) -> Account:
    """Apply the fields ``changes`` gives (only those) and re-publish the account: a time
    zone only before its first invoice, a cycle day from each subscription's next period,
    invoicing held (nothing comes due) or resumed (what came due while held, on one invoice
    dated today), collection made automatic (what is owed is charged now)."""
    now = real.now
    timezone = changes.get("timezone")
    if timezone is not None and not is_time_zone(timezone):
        raise InvalidRequest.field("timezone", f"{timezone!r} is not an IANA time zone")
    tenant, account = await lock_account_now(session, tenant_id, account_id, real)
    if timezone is not None and timezone != account.timezone:
        try:
            await check_timezone_change(session, account)
        except ChangeRefused as exc:
            raise Conflict.field("timezone", str(exc)) from exc
    if "cycle_day" in changes:
        await _invoiced_itself(session, account, "cycle_day")
        today = local_today(now, account.timezone)
        await change_cycle_day(session, account, changes["cycle_day"], today)
    invoicing = changes.get("invoicing")
    resumes = invoicing in ("automatic", "draft") and account.invoicing == "held"
    if invoicing == "held":
        await _invoiced_itself(session, account, "invoicing")
        account.next_bill_on = None  # nothing comes due until invoicing resumes
    for name, value in changes.items():
        if name != "cycle_day":
            setattr(account, name, value)
    address = changes.get("billing_address")
    if isinstance(address, Sequence) and not isinstance(address, str):  # kept as its lines
        account.billing_address = "\n".join(address)
    if changes.get("collection") == "automatic":
        account.collect_at = now
    if resumes:
        today = local_today(now, account.timezone)
        await invoice_account(session, tenant, account, now, resumed_on=today)
    await refresh_family(session, tenant, account, now)
    return account


async def set_flag(
    session: AsyncSession, tenant_id: str, account_id: str, real: RealTime, flag: str, value: bool
) -> Account:
    """Suspend by hand or lift it (``suspended_manually``), exempt from dunning or end the
    exemption (``dunning_exempt``), and re-publish the account."""
    assert flag in FLAGS
    tenant, account = await lock_account_now(session, tenant_id, account_id, real)
    setattr(account, flag, value)
    await refresh_family(session, tenant, account, real.now)
    return account


async def exempt_subscription(
    session: AsyncSession, tenant_id: str, subscription_id: str, exempt: bool, now: datetime
) -> Account:
    """Keep (or stop keeping) one subscription's access while its account is suspended for
    non-payment; returns the account, re-published."""
    account_id = await session.scalar(
        select(Subscription.account_id).where(
            Subscription.tenant_id == tenant_id, Subscription.id == subscription_id
        )
    )
    account = await lock_account(session, tenant_id, account_id) if account_id else None
    sub = await session.get(Subscription, subscription_id)
    tenant = await session.get(Tenant, tenant_id)
    if account is None or sub is None or tenant is None:
        raise NotFound(f"no subscription {subscription_id!r}")
    sub.dunning_exempt = exempt
    await refresh_family(session, tenant, account, now)
    return account


async def standing_history(session: AsyncSession, account: Account) -> list[StandingChange]:
    """Every change of the account's standing, oldest first."""
    query = (
        select(StandingChange)
        .where(
            StandingChange.tenant_id == account.tenant_id,
            StandingChange.account_id == account.id,
        )
        .order_by(StandingChange.effective_at, StandingChange.id)
        .limit(HISTORY_LISTED)
    )
    return list((await session.scalars(query)).all())
