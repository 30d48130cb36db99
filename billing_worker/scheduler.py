"""Re-evaluates accounts whose standing or billing can change by the passing of time."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.batches import bill_and_refresh
from billing_worker.db.models import Account
from billing_worker.jobs import has_rows
from shared.clock import Clock


async def run_due(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, *, batch_size: int = 200
) -> int:
    """Bill and re-evaluate one batch of due accounts in one transaction.

    Rows are claimed with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL), so several workers
    share the work; a crash rolls the batch back and the next run redoes it whole.
    """
    now = clock.now()
    if not await has_rows(sessions, Account.next_evaluation_at <= now):
        return 0
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
