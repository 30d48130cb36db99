"""What a test clock's settle waits for: the work the worker owes as of now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.models import Account, OutboxEntry, PaymentAttempt, PaymentEvent
from billing_worker.domain.statuses import UNSETTLED, AttemptStatus


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
