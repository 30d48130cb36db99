"""Reconciliation: settling the charges whose answer the collector never recorded.

An attempt left ``pending`` (a crash between storing it and calling the provider) or
``unknown`` (a timeout) is looked up with the provider by the reference it answered, or
charged again under its *own* idempotency key while the provider still keeps that key --
the provider answers with the first charge, never a second one. What the worker cannot
settle by itself parks its account, saying what to look up, so collection never waits
forever and no card is charged twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.models import Account, PaymentAttempt, PaymentMethod
from billing_worker.domain.statuses import UNSETTLED, AttemptStatus
from billing_worker.jobs.catch_up import real_time
from billing_worker.payments.book import ProviderBook, book_of
from billing_worker.payments.collection import Charge, make_charge, provider_named, record_result
from billing_worker.payments.providers import ChargeResult, Outcome, PaymentProvider
from billing_worker.publishing.outbox import hold_access
from billing_worker.runtime.parking import park_account
from shared.clock import Clock
from shared.money import Money

log = logging.getLogger(__name__)


#: An attempt whose outcome is still unknown this long after it was made is parked with
#: its account: collection waits for a person rather than forever.
UNSETTLED_LIMIT = timedelta(days=3)


class UnsettledCharge(Exception):
    """A charge whose outcome the worker cannot learn by itself (the account is parked)."""


async def reconcile(
    sessions: async_sessionmaker[AsyncSession],
    providers: Sequence[PaymentProvider] | ProviderBook,
    clock: Clock,
    *,
    after: timedelta,
    provider_timeout: float = 10.0,
) -> int:
    """Settle attempts left ``pending`` (a crash) or ``unknown`` (a timeout) for ``after``.

    Each is looked up by the provider's reference when one was answered. One the provider
    cannot place is charged again under its own key while the provider still keeps that
    key (its answer is the first charge's, never a second charge); past the key's
    lifetime, or still unknown after ``UNSETTLED_LIMIT``, its account is parked, saying
    what to look up: collection never waits forever, and no card is charged twice."""
    real = real_time(clock)
    now = real.now
    async with sessions() as session:
        rows = (
            await session.execute(
                select(PaymentAttempt, PaymentMethod)
                .join(PaymentMethod, PaymentMethod.id == PaymentAttempt.payment_method_id)
                .join(Account, Account.id == PaymentAttempt.account_id)
                .where(
                    PaymentAttempt.status.in_(UNSETTLED),
                    PaymentAttempt.updated_at <= now - after,
                    Account.parked_at.is_(None),
                )
                .limit(50)
            )
        ).all()
    settled, book = 0, book_of(providers)
    for attempt, method in rows:
        async with sessions() as session:
            provider = provider_named(await book.of(session, attempt.tenant_id), method.provider)
        if provider is None:
            continue
        key, age = attempt.idempotency_key, now - attempt.created_at
        try:
            result = await provider.lookup(key, reference=attempt.reference)
        except Exception:  # the provider cannot say now: ask again later
            log.exception("collection.lookup_failed key=%s", key)
            result = ChargeResult(Outcome.UNKNOWN, "provider_error")
        if result is None:
            if provider.key_lifetime is not None and age >= provider.key_lifetime:
                await _park_unsettled(
                    sessions, attempt, now,
                    f"the charge {key} of {attempt.created_at:%Y-%m-%d %H:%M} UTC got no "
                    f"answer, and {provider.name} no longer keeps its key, so it is not "
                    "repeated: look it up there (metadata tollgate_key), record a payment "
                    "if it was made, then release the account",
                )  # fmt: skip
                continue
            amount = Money.from_minor(attempt.amount_minor, attempt.currency)
            charge = Charge(attempt.id, provider, method.token, amount, key, now)
            result = await make_charge(charge, provider_timeout)  # the same key: once at most
        if result.outcome is Outcome.UNKNOWN:
            if age >= UNSETTLED_LIMIT:
                await _park_unsettled(
                    sessions, attempt, now,
                    f"the outcome of the charge {key} of {attempt.created_at:%Y-%m-%d %H:%M} "
                    f"UTC is still unknown ({result.reason}): look it up with "
                    f"{provider.name}, record a payment if it was made, then release the "
                    "account",
                )  # fmt: skip
                continue
            async with sessions() as session, session.begin():
                stale = await session.get(PaymentAttempt, attempt.id, with_for_update=True)
                if stale is not None and stale.status in UNSETTLED:
                    stale.status, stale.updated_at = AttemptStatus.UNKNOWN, now  # ask again later
                    stale.reference = stale.reference or result.reference
            continue
        await record_result(sessions, attempt.id, result, real, source="reconciliation")
        settled += 1
    return settled


async def _park_unsettled(
    sessions: async_sessionmaker[AsyncSession],
    attempt: PaymentAttempt,
    now: datetime,
    why: str,
) -> None:
    """Park the attempt's account: its collection waits until a person settles the charge
    and releases it (``runtime.parking.release_account`` gives the attempt up)."""
    log.warning("collection.unsettled key=%s", attempt.idempotency_key)
    await park_account(
        sessions, attempt.account_id, "collector", UnsettledCharge(why), now, hold=hold_access
    )


async def give_up_unsettled(session: AsyncSession, account: Account, now: datetime) -> None:
    """Releasing a parked account gives up the charges made before it was parked whose
    outcome is still unknown: the tenant has looked them up with the provider (and recorded
    a payment if one was made), so they stop holding back its collection."""
    if account.parked_at is None:
        return
    stuck = await session.scalars(
        select(PaymentAttempt).where(
            PaymentAttempt.tenant_id == account.tenant_id,
            PaymentAttempt.account_id == account.id,
            PaymentAttempt.status.in_(UNSETTLED),
            PaymentAttempt.created_at <= account.parked_at,
        )
    )
    for attempt in stuck:
        attempt.status, attempt.reason = AttemptStatus.FAILED, "given_up"
        attempt.updated_at = now
