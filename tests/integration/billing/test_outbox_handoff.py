"""A small transaction's outbox rows are handed to the worker's publisher at commit and
published with no read of the outbox table; whatever goes wrong, the table still has them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.db.models import OutboxEntry
from billing_worker.publishing.outbox import HANDOFF_ROWS, hand_off_to, stage_record
from billing_worker.publishing.publisher import OutboxPublisher
from shared import keys, redis_connection
from shared.entitlement import EntitlementRecord, decode_record
from shared.states import Standing
from tests.conftest import OwnRedis

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@dataclass
class Worker:
    sessions: async_sessionmaker[AsyncSession]
    publisher: OutboxPublisher
    redis: aioredis.Redis
    #: SQL statements that read the outbox table, as the database received them.
    outbox_reads: list[str]

    async def commit(self, *records: EntitlementRecord) -> None:
        async with self.sessions() as session, session.begin():
            for record in records:
                stage_record(session, record, NOW)

    async def roll_back(self, *records: EntitlementRecord) -> None:
        """Stage ``records``, then fail before the commit."""
        async with self.sessions() as session, session.begin():
            for record in records:
                stage_record(session, record, NOW)
            raise RuntimeError("the request failed")

    async def outbox(self) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(OutboxEntry)) or 0)

    async def published(self, account: str) -> tuple[int, Standing] | None:
        """The version and standing of the account's record in Redis, if any."""
        data = await self.redis.get(keys.account_key("tnt_a", account))
        if data is None:
            return None
        published = decode_record(data)
        return published.version, published.standing


def record(account: str, version: int, standing: Standing = Standing.ACTIVE) -> EntitlementRecord:
    return EntitlementRecord(
        tenant_id="tnt_a", account_id=account, version=version, standing=standing, reason="paid"
    )


@pytest.fixture
async def worker(database_url: str, own_redis: OwnRedis) -> AsyncIterator[Worker]:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    client = redis_connection.connect(own_redis.url)
    publisher = OutboxPublisher(sessions, client)
    hand_off_to(sessions, publisher.hand_off)
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "outbox" in statement:
            reads.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        yield Worker(sessions, publisher, client, reads)
    finally:
        await client.aclose()
        await engine.dispose()


async def test_a_committed_change_is_published_without_reading_the_outbox(
    worker: Worker,
) -> None:
    await worker.commit(record("acc_1", 7, Standing.SUSPENDED))
    assert worker.publisher.wake.is_set()  # the publisher is woken by the commit itself

    assert await worker.publisher.drain_once() == 1
    assert await worker.published("acc_1") == (7, Standing.SUSPENDED)
    assert worker.outbox_reads == []
    assert await worker.outbox() == 0  # taken by Redis, so gone from the table
    assert await worker.publisher.drain_once() == 0


async def test_rows_handed_off_when_redis_failed_are_drained_from_the_table(
    worker: Worker, own_redis: OwnRedis
) -> None:
    await worker.commit(record("acc_1", 3), record("acc_2", 5))
    own_redis.stop()
    with pytest.raises((RedisConnectionError, OSError)):
        await worker.publisher.drain_once()
    own_redis.start()

    assert await worker.outbox() == 2
    assert await worker.publisher.drain_all() == 2
    assert await worker.published("acc_1") == (3, Standing.ACTIVE)
    assert await worker.published("acc_2") == (5, Standing.ACTIVE)
    assert await worker.outbox() == 0


async def test_a_rolled_back_transaction_hands_nothing_off(worker: Worker) -> None:
    with pytest.raises(RuntimeError):
        await worker.roll_back(record("acc_1", 1))

    assert await worker.publisher.drain_once() == 0
    assert await worker.published("acc_1") is None
    assert await worker.outbox() == 0


async def test_a_batch_jobs_rows_are_left_to_the_drain(worker: Worker) -> None:
    accounts = [f"acc_{n}" for n in range(HANDOFF_ROWS + 1)]
    await worker.commit(*(record(account, 2) for account in accounts))

    assert await worker.publisher.drain_all() == len(accounts)
    assert worker.outbox_reads  # read back from the table, in one batch
    assert all([await worker.published(account) for account in accounts])
    assert await worker.outbox() == 0


async def test_an_older_hand_off_never_overwrites_a_newer_record(worker: Worker) -> None:
    await worker.commit(record("acc_1", 1, Standing.SUSPENDED))
    await worker.commit(record("acc_1", 2, Standing.ACTIVE))

    # Another worker, draining the table, published the newest before this one's hand-off:
    async with worker.sessions() as session, session.begin():
        newest = await session.scalar(select(OutboxEntry).order_by(OutboxEntry.id.desc()))
        assert newest is not None
        await worker.redis.set(newest.redis_key, newest.payload)
    await worker.publisher.drain_all()

    assert await worker.published("acc_1") == (2, Standing.ACTIVE)
