"""Re-evaluates accounts whose standing or billing can change by the passing of time."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.models import Account, Tenant
from billing_worker.db.unit_of_work import defer_numbers
from billing_worker.domain.moments import RealTime
from billing_worker.jobs.catch_up import catch_up, real_time
from billing_worker.publishing.outbox import hold_access
from billing_worker.runtime.loop import has_rows
from billing_worker.runtime.parking import batch_or_apart, transient
from billing_worker.standing.entitlements import refresh_account
from shared.clock import Clock


async def run_due(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, *, batch_size: int = 200
) -> int:
    """Catch one batch of due accounts up to now (``catch_up.catch_up``) in one transaction.

    Rows are claimed with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL), so several workers
    share the work; a crash rolls the batch back and the next run redoes it whole. A batch
    that fails on its data is redone one account at a time, and the account that fails
    alone is parked (``billing_worker.runtime.parking``): the others are caught up regardless.
    """
    real = real_time(clock)
    now = real.now
    # An account whose charge is due waits for the collector (see ``catch_up.catch_up``).
    due = and_(
        Account.next_evaluation_at <= now,
        or_(Account.collect_at.is_(None), Account.collect_at > now),
        Account.parked_at.is_(None),
    )
    if not await has_rows(sessions, due):
        return 0

    async def claim(session: AsyncSession, only: str | None) -> Sequence[Account]:
        query = select(Account).where(due).order_by(Account.next_evaluation_at)
        if only is not None:
            query = query.where(Account.id == only)
        return (
            await session.scalars(query.limit(batch_size).with_for_update(skip_locked=True))
        ).all()

    async def work(session: AsyncSession, accounts: Sequence[Account]) -> None:
        defer_numbers(session)  # a batch locks the tenant's invoice counter only to commit
        await catch_up(session, accounts, now, real=real)

    async def culprits(account_id: str) -> list[tuple[str, Exception]]:
        return await failing_members(sessions, account_id, real)

    return await batch_or_apart(
        sessions, claim, work, "scheduler", now, hold=hold_access, culprits=culprits
    )


async def failing_members(
    sessions: async_sessionmaker[AsyncSession], account_id: str, real: RealTime
) -> list[tuple[str, Exception]]:
    """The members of the account's family (its head and the head's children not parked)
    whose catch-up fails on its own, each tried alone in a transaction rolled back: the
    family is caught up together, so one child's bad data failed its parent and siblings
    too, and only that child is to be set aside."""
    async with sessions() as session:
        found = await session.get(Account, account_id)
        if found is None:
            return []
        head = found.parent_id or found.id
        children = await session.scalars(
            select(Account.id).where(
                Account.tenant_id == found.tenant_id,
                Account.parent_id == head,
                Account.parked_at.is_(None),
            )
        )
        members = [head, *children]
    if len(members) == 1:
        return []
    failing: list[tuple[str, Exception]] = []
    for member in members:
        async with sessions() as session:
            trial = await session.begin()
            try:
                # the head before the member, the order every writer takes (a child's
                # invoice touches its parent): a trial never waits in a cycle with a job
                await session.get(Account, head, with_for_update=True)
                account = await session.get(Account, member, with_for_update=True)
                tenant = await session.get(Tenant, account.tenant_id) if account else None
                if account is not None and tenant is not None and account.parked_at is None:
                    # its own moments, then an evaluation as of now: what its family's
                    # catch-up asks of it (a parent re-publishes its followers), due or not
                    await catch_up(session, [account], real.now, real=real, alone=True)
                    await refresh_account(session, tenant, account, real.now, real=real)
                    await session.flush()
            except Exception as exc:
                if transient(exc):
                    raise
                failing.append((member, exc))
            finally:
                await trial.rollback()
    return failing
