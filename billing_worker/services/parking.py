"""What the worker set aside after an error (``runtime.parking``), seen and released by a
person: a parked account is caught up again now, and stays parked, saying why, if that fails
again; a parked payment event goes back to the payment queue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.models import Account, PaymentEvent
from billing_worker.domain.moments import RealTime
from billing_worker.jobs.catch_up import catch_up
from billing_worker.payments.reconciliation import give_up_unsettled
from billing_worker.publishing.outbox import hold_access
from billing_worker.runtime.parking import describe, park_account, release_account, transient
from billing_worker.services.errors import ApiError, Conflict, NotFound
from billing_worker.services.families import lock_family

T = TypeVar("T")

#: At most this many of each are listed, oldest first.
LISTED = 500


class StillFailing(ApiError):
    """Releasing it failed again: it stays parked."""

    status = 409
    code = "still_failing"


async def parked(session: AsyncSession, tenant_id: str) -> tuple[list[Account], list[PaymentEvent]]:
    """The tenant's parked accounts and payment events, oldest first."""
    accounts = await session.scalars(
        select(Account)
        .where(Account.tenant_id == tenant_id, Account.parked_at.is_not(None))
        .order_by(Account.parked_at, Account.id)
        .limit(LISTED)
    )
    events = await session.scalars(
        select(PaymentEvent)
        .where(PaymentEvent.tenant_id == tenant_id, PaymentEvent.parked_at.is_not(None))
        .order_by(PaymentEvent.parked_at, PaymentEvent.id)
        .limit(LISTED)
    )
    return list(accounts.all()), list(events.all())


async def release(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: str,
    account_id: str,
    real: RealTime,
    view: Callable[[AsyncSession, Account], Awaitable[T]],
) -> T:
    """Release the parked account: give up the charges whose outcome could not be learned,
    re-queue its parked payment events and catch it up now; returns it as ``view`` renders
    it. If that fails again, it is parked again and ``StillFailing`` says why."""
    now = real.now
    try:
        async with sessions() as session, session.begin():
            _tenant, account, _payer = await lock_family(session, tenant_id, account_id)
            if account.parked_at is None:
                raise Conflict(f"account {account_id!r} is not parked")
            await give_up_unsettled(session, account, now)
            release_account(account, now)
            await session.execute(
                update(PaymentEvent)
                .where(PaymentEvent.tenant_id == tenant_id, PaymentEvent.account_id == account_id)
                .values(parked_at=None, parked_error=None)
            )
            await catch_up(session, [account], now, real=real)
            return await view(session, account)
    except ApiError:
        raise
    except Exception as exc:
        if transient(exc):
            raise
        await park_account(sessions, account_id, "release", exc, now, hold=hold_access)
        raise StillFailing(describe(exc)) from exc


async def release_event(session: AsyncSession, tenant_id: str, event_id: int) -> None:
    """Put a parked payment event back on the payment queue."""
    event = await session.scalar(
        select(PaymentEvent)
        .where(PaymentEvent.tenant_id == tenant_id, PaymentEvent.id == event_id)
        .with_for_update()
    )
    if event is None:
        raise NotFound(f"no payment event {str(event_id)!r}")
    if event.parked_at is None:
        raise Conflict(f"payment event {event_id} is not parked")
    event.parked_at = event.parked_error = None
