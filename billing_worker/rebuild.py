"""``tollgate cache rebuild``: repopulate Redis from SQL, the source of truth.

Every account's record is recomputed (with a new version, so it wins any compare-and-set),
every user and gateway key is re-staged, and the outbox is drained. With ``clean`` the
old Tollgate keys are deleted first, which also removes entries SQL no longer knows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.batches import bring_up_to
from billing_worker.db.models import Account, ApiKey, Tenant, User
from billing_worker.entitlements import refresh_account
from billing_worker.outbox import stage_api_key, stage_user
from billing_worker.publisher import OutboxPublisher
from shared import keys
from shared.clock import Clock

BATCH = 500
Progress = Callable[[str, int], None]


async def _delete_all(client: aioredis.Redis) -> int:
    deleted = 0
    keep = {keys.CLOCK_KEY}
    async for batch in _scan_batches(client):
        doomed = [k for k in batch if k.decode() not in keep]
        if doomed:
            deleted += int(await client.unlink(*doomed))
    return deleted


async def _scan_batches(client: aioredis.Redis) -> AsyncIterator[list[bytes]]:
    cursor = 0
    while True:
        cursor, batch = await client.scan(cursor, match=keys.all_keys_pattern(), count=1000)
        yield [k if isinstance(k, bytes) else k.encode() for k in batch]
        if cursor == 0:
            return


async def rebuild(
    sessions: async_sessionmaker[AsyncSession],
    client: aioredis.Redis,
    clock: Clock,
    *,
    clean: bool = False,
    progress: Progress | None = None,
) -> dict[str, int]:
    report = progress or (lambda _what, _n: None)
    counts = {"deleted": await _delete_all(client) if clean else 0}
    now = clock.now()
    publisher = OutboxPublisher(sessions, client)
    async with sessions() as session, session.begin():
        key_rows = (await session.scalars(select(ApiKey))).all()
        for key in key_rows:
            stage_api_key(session, key, now)
    counts["keys"] = len(key_rows)
    await publisher.drain_all()
    counts["accounts"] = await _in_batches(sessions, publisher, Account, report, _refresh(now))
    counts["users"] = await _in_batches(sessions, publisher, User, report, _restage(now))
    return counts


Row = TypeVar("Row", Account, User)
Visit = Callable[[AsyncSession, Row], Awaitable[None]]


def _refresh(now: datetime) -> Visit[Account]:
    async def visit(session: AsyncSession, account: Account) -> None:
        tenant = await session.get(Tenant, account.tenant_id)
        if tenant is None:
            raise LookupError(f"account {account.id} has no tenant")
        # moments the scheduler has not reached yet are processed first, each as of its
        # own instant, so rebuilding the view never skips one
        await bring_up_to(session, account, now)
        await refresh_account(session, tenant, account, now)

    return visit


def _restage(now: datetime) -> Visit[User]:
    async def visit(session: AsyncSession, user: User) -> None:
        stage_user(session, user, now)

    return visit


async def _in_batches(
    sessions: async_sessionmaker[AsyncSession],
    publisher: OutboxPublisher,
    table: type[Row],
    report: Progress,
    visit: Visit[Row],
) -> int:
    """Visit every row in id order, one locked batch per transaction, then publish it."""
    done, last = 0, ""
    while True:
        async with sessions() as session, session.begin():
            rows = (
                await session.scalars(
                    select(table)
                    .where(table.id > last)
                    .order_by(table.id)
                    .limit(BATCH)
                    .with_for_update()
                )
            ).all()
            for row in rows:
                await visit(session, row)
        if not rows:
            return done
        last = rows[-1].id
        done += len(rows)
        await publisher.drain_all()
        report(table.__tablename__, done)
