"""A test clock's settle: do now what the worker would have done by this time -- evaluate
what is due, charge, reconcile, apply the payment queue -- and wait until it is published.

The worker's own scheduler and publisher may be working on some of it at the same moment
(they skip rows another transaction holds), so this waits until nothing is due and nothing
is unpublished rather than trusting its own share of the work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db import deadline
from billing_worker.db.models import Account, OutboxEntry, PaymentAttempt, PaymentEvent
from billing_worker.domain.statuses import UNSETTLED, AttemptStatus
from billing_worker.invoicing import budget
from billing_worker.jobs.scheduler import run_due
from billing_worker.payments.book import ProviderBook
from billing_worker.payments.collection import collect_due
from billing_worker.payments.payment_queue import drain
from billing_worker.payments.reconciliation import reconcile
from shared.clock import Clock

#: Rounds of work before settling gives up (each a few milliseconds when nothing is left).
ROUNDS = 1000


@dataclass(frozen=True, slots=True)
class Due:
    """Each kind of work owed now, by whether there is any."""

    evaluations: bool
    collect: bool
    unsettled: bool
    #: A charge in flight: its outcome decides what the account's later moments do.
    charging: bool
    queued: bool
    unpublished: bool

    @property
    def anything_but_queued(self) -> bool:
        """Work to wait for (payment events that wait, a refund before its charge, stay)."""
        return (
            self.evaluations or self.collect or self.unsettled or self.charging or self.unpublished
        )


async def what_is_due(
    sessions: async_sessionmaker[AsyncSession], now: datetime, reconcile_after: timedelta
) -> Due:
    async with sessions() as session:
        row = (
            await session.execute(
                select(
                    exists().where(Account.next_evaluation_at <= now, Account.parked_at.is_(None)),
                    exists().where(Account.collect_at <= now, Account.parked_at.is_(None)),
                    exists().where(
                        PaymentAttempt.status.in_(UNSETTLED),
                        PaymentAttempt.updated_at <= now - reconcile_after,
                    ),
                    exists().where(PaymentAttempt.status == AttemptStatus.PENDING),
                    exists().where(
                        PaymentEvent.applied_at.is_(None), PaymentEvent.parked_at.is_(None)
                    ),
                    exists().where(OutboxEntry.id.is_not(None)),
                )
            )
        ).one()
    return Due(*row)


async def settle(
    sessions: async_sessionmaker[AsyncSession],
    providers: ProviderBook,
    clock: Clock,
    *,
    reconcile_after: timedelta,
    publish: Callable[[], None],
) -> int:
    """Do what is due until nothing is left and it is published (``publish`` wakes the
    publisher); returns the accounts evaluated. The worker's own work: no request's budget
    or time limit applies."""
    with budget.within(None), deadline.within(None):
        evaluated = 0
        for _ in range(ROUNDS):
            evaluated += await run_due(sessions, clock)
            work = await what_is_due(sessions, clock.now(), reconcile_after)
            if work.collect:
                await collect_due(sessions, providers, clock)
            if work.unsettled:
                await reconcile(sessions, providers, clock, after=reconcile_after)
            if work.queued:
                await drain(sessions, clock)  # events that wait (a refund) stay queued
            # A charge in flight (the worker's own collector making it) decides what the
            # account's later moments do: wait for its outcome.
            if not work.anything_but_queued:
                return evaluated
            publish()
            await asyncio.sleep(0.005)
    raise RuntimeError("the worker did not settle: accounts stay due or the outbox stays full")
