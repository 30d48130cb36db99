"""Parking: a unit of work whose processing fails is set aside, and the job goes on.

The worker serves every tenant, so no tenant's data may stop it. Each job works in units
-- an account (scheduler, invoice runs, collector), a payment event (payment queue), a
delivery (notifier) -- and an error that is not the infrastructure's (a database or
Redis that is down, a network error: retried later) is the unit's own. The batch it was
in is rolled back and redone one unit at a time; the unit that fails again is *parked*:
marked with the error and when, passed over by every job, shown by the API, until the
tenant (or operator) releases it. Kill Bill parks accounts the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import TypeVar

from redis.exceptions import RedisError
from sqlalchemy import update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.models import Account, PaymentEvent
from billing_worker.db.sealed import SealingError

log = logging.getLogger(__name__)

K = TypeVar("K")
#: The members of an account's family that fail on their own, with their errors (each
#: tried alone and rolled back): a family is processed together, so the account that failed
#: alone may only have been carrying a member's failure.
Culprits = Callable[[str], Awaitable[list[tuple[str, Exception]]]]
#: What parking does to the account's published access, given by the layer that publishes
#: (``publishing.outbox.hold_access``): billing waits for a person, access must not lapse
#: for it.
Hold = Callable[[AsyncSession, Account, datetime], Awaitable[None]]

#: Errors of the infrastructure (or of the operator's configuration, such as a missing
#: secrets key), not of the data: the work is retried as it is, later.
TRANSIENT: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError, SealingError)


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the infrastructure failed (retry later) rather than the data.

    Among database errors those the driver raises are the database's (a lost connection,
    a lock timeout, a missing table), except a refused value or constraint: that is the
    data's, like an ORM error or any other exception.
    """
    if isinstance(exc, TRANSIENT):
        return True
    if isinstance(exc, IntegrityError | DataError):
        return False
    return isinstance(exc, DBAPIError) or (
        isinstance(exc, SQLAlchemyError) and isinstance(exc.__cause__, TRANSIENT)
    )


def describe(exc: BaseException) -> str:
    """The error as a tenant reads it on the parked unit."""
    text = str(exc).strip()
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:500]


async def each_apart(
    keys: Iterable[K],
    one: Callable[[K], Awaitable[object]],
    park: Callable[[K, Exception], Awaitable[None]],
) -> int:
    """Run ``one`` for each key on its own (its own transaction); a key whose run fails
    with a data error is parked, and the rest go on. Returns how many were parked."""
    parked = 0
    for key in keys:
        try:
            await one(key)
        except Exception as exc:
            if transient(exc):
                raise
            await park(key, exc)
            parked += 1
    return parked


Claim = Callable[[AsyncSession, str | None], Awaitable[Sequence[Account]]]
Work = Callable[[AsyncSession, Sequence[Account]], Awaitable[object]]


async def batch_or_apart(
    sessions: async_sessionmaker[AsyncSession],
    claim: Claim,
    work: Work,
    job: str,
    now: datetime,
    *,
    hold: Hold | None = None,
    culprits: Culprits | None = None,
) -> int:
    """Claim a batch of accounts (``claim(session, None)``, locked) and do ``work`` on it
    in one transaction. When that fails on the data, redo it one account per transaction
    (``claim(session, account_id)``), parking the account that fails alone -- or, when
    ``culprits`` names other members of its family that fail on their own, parking those
    and doing the account's work again without them. Returns how many accounts were
    claimed."""
    claimed: list[str] = []
    try:
        async with sessions() as session, session.begin():
            accounts = await claim(session, None)
            claimed = [a.id for a in accounts]
            await work(session, accounts)
    except Exception as exc:
        if transient(exc) or not claimed:
            raise

        async def one(account_id: str) -> None:
            async with sessions() as session, session.begin():
                accounts = await claim(session, account_id)
                if accounts:
                    await work(session, accounts)

        async def park(account_id: str, error: Exception) -> None:
            if culprits is None:
                await park_account(sessions, account_id, job, error, now, hold=hold)
                return
            found = await culprits(account_id)
            for member, its_error in found:
                await park_account(sessions, member, job, its_error, now, hold=hold)
            if account_id in (member for member, _ in found):
                return
            try:  # its family without the members set aside (by this run or another)
                await one(account_id)
            except Exception as again:
                if transient(again):
                    raise
                await park_account(sessions, account_id, job, again, now, hold=hold)

        await each_apart(claimed, one, park)
    return len(claimed)


async def park_account(
    sessions: async_sessionmaker[AsyncSession],
    account_id: str,
    job: str,
    exc: Exception,
    now: datetime,
    *,
    hold: Hold | None = None,
) -> None:
    """Set the account aside with the error ``job`` met processing it (an
    ``account.parked`` event tells the tenant); ``hold`` keeps its access from lapsing
    meanwhile."""
    log.error("parking.account account=%s job=%s", account_id, job, exc_info=exc)
    async with sessions() as session, session.begin():
        account = await session.get(Account, account_id, with_for_update=True)
        if account is not None:
            account.parked_at = account.parked_at or now
            account.parked_error, account.parked_job = describe(exc), job
            if hold is not None:
                await hold(session, account, now)


async def park_event(
    sessions: async_sessionmaker[AsyncSession], event_id: int, exc: Exception, now: datetime
) -> None:
    """Set the payment event aside with the error applying it met."""
    log.error("parking.payment_event event=%s", event_id, exc_info=exc)
    async with sessions() as session, session.begin():
        await session.execute(
            update(PaymentEvent)
            .where(PaymentEvent.id == event_id)
            .values(parked_at=now, parked_error=describe(exc))
        )


def release_account(account: Account, now: datetime) -> None:
    """Put a parked account back in the jobs' way: evaluated (and billed) again at once."""
    account.parked_at = account.parked_error = account.parked_job = None
    account.next_evaluation_at = min(account.next_evaluation_at or now, now)
