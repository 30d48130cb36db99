"""Re-evaluates accounts whose standing or billing can change by the passing of time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.batches import bill_and_refresh
from billing_worker.db.models import Account
from shared.clock import Clock, RedisTestClock

log = logging.getLogger(__name__)


async def run_due(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, *, batch_size: int = 200
) -> int:
    """Bill and re-evaluate one batch of due accounts in one transaction.

    Rows are claimed with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL), so several workers
    share the work; a crash rolls the batch back and the next run redoes it whole.
    """
    now = clock.now()
    async with sessions() as session, session.begin():
        accounts = (
            await session.scalars(
                select(Account)
                .where(Account.next_evaluation_at <= now)
                .order_by(Account.next_evaluation_at)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        ).all()
        await bill_and_refresh(session, accounts, now)
    return len(accounts)


class Scheduler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        interval: float,
        on_change: Callable[[], None],
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._interval = interval
        self._on_change = on_change

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                while await run_due(self._sessions, self._clock):
                    self._on_change()
            except SQLAlchemyError as exc:
                log.warning("scheduler.run_failed: %s", exc)
            if isinstance(self._clock, RedisTestClock):
                await self._clock.wait_changed(self._interval)
            else:
                await asyncio.sleep(self._interval)
