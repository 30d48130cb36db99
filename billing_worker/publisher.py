"""Drains the outbox into Redis with the versioned compare-and-set, in commit order."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.models import OutboxEntry
from shared import keys
from shared.redis_scripts import CAS_SET

log = logging.getLogger(__name__)


class OutboxPublisher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        client: aioredis.Redis,
        *,
        batch_size: int = 500,
        idle_poll: float = 0.25,
    ) -> None:
        self._sessions = sessions
        self._cas = client.register_script(CAS_SET)
        self._client = client
        self._batch_size = batch_size
        self._idle_poll = idle_poll
        self.wake = asyncio.Event()

    async def drain_once(self) -> int:
        """Publish one batch; rows are deleted only after Redis has taken them."""
        async with self._sessions() as session, session.begin():
            rows = (
                await session.scalars(
                    select(OutboxEntry)
                    .order_by(OutboxEntry.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            async with self._client.pipeline(transaction=False) as pipe:
                for row in rows:
                    await self._cas(
                        keys=[row.redis_key],
                        args=[row.version, row.payload, keys.INVALIDATION_CHANNEL],
                        client=pipe,
                    )
                await pipe.execute()
            await session.execute(
                delete(OutboxEntry).where(OutboxEntry.id.in_([row.id for row in rows]))
            )
        return len(rows)

    async def drain_all(self) -> int:
        total = 0
        while count := await self.drain_once():
            total += count
        return total

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                published = await self.drain_once()
            except (RedisError, OSError, SQLAlchemyError) as exc:
                log.warning("outbox.drain_failed: %s", exc)
                published = 0
                await asyncio.sleep(0.5)
            if published:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self._idle_poll)
            self.wake.clear()
