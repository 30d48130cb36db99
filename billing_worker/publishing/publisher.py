"""Drains the outbox into Redis with the versioned compare-and-set, in commit order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy import Delete, Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.models import OutboxEntry
from billing_worker.publishing.outbox import Written
from billing_worker.runtime.loop import has_rows, repeat
from shared import keys
from shared.redis_connection import RedisClient, run_script
from shared.redis_scripts import CAS_SET

log = logging.getLogger(__name__)


class OutboxPublisher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        client: RedisClient,
        *,
        batch_size: int = 500,
        idle_poll: float = 0.25,
    ) -> None:
        self._sessions = sessions
        self._cas = client.register_script(CAS_SET)
        self._client = client
        self._batch_size = batch_size
        self._idle_poll = idle_poll
        bind = sessions.kw.get("bind")
        self._single_writer = bind is not None and bind.dialect.name == "sqlite"
        self.wake = asyncio.Event()
        self._handed: list[Written] = []

    def hand_off(self, rows: list[Written]) -> None:
        """Rows just committed in this process (``outbox.hand_off_to``): published next."""
        self._handed.extend(rows)
        self.wake.set()

    async def drain_once(self) -> int:
        """Publish one batch; rows are deleted only after Redis has taken them.

        On PostgreSQL the batch's rows are claimed (``SKIP LOCKED``) so that several
        publishers share the work. SQLite has one writer for the whole database, and a
        transaction must never hold it while waiting on Redis: there the batch is read
        without a lock and deleted after, in a transaction of its own. (Publishing a row
        twice is harmless: the compare-and-set takes a version once.)

        Rows handed off at commit go first, as they were written, without reading the
        table; should Redis fail, they are still there for the next drain.
        """
        if self._handed:
            handed, self._handed = self._handed, []
            await self._publish(handed)
            async with self._sessions() as session, session.begin():
                await session.execute(_taken(handed))
            return len(handed)
        if not await has_rows(self._sessions, OutboxEntry.id.is_not(None)):
            return 0
        if self._single_writer:
            async with self._sessions() as session:
                await session.connection(execution_options={"read_only": True})
                rows = (await session.scalars(self._batch())).all()
            if rows:
                await self._publish(rows)
                async with self._sessions() as session, session.begin():
                    await session.execute(_taken(rows))
            return len(rows)
        async with self._sessions() as session, session.begin():
            rows = (await session.scalars(self._batch().with_for_update(skip_locked=True))).all()
            if rows:
                await self._publish(rows)
                await session.execute(_taken(rows))
        return len(rows)

    def _batch(self) -> Select[OutboxEntry]:
        return select(OutboxEntry).order_by(OutboxEntry.id).limit(self._batch_size)

    async def _publish(self, rows: Sequence[OutboxEntry | Written]) -> None:
        calls = [
            ([row.redis_key], [row.version, row.payload, keys.INVALIDATION_CHANNEL]) for row in rows
        ]
        await run_script(self._client, CAS_SET, self._cas.sha, calls)

    async def drain_all(self) -> int:
        total = 0
        while count := await self.drain_once():
            total += count
        return total

    async def run(self, stop: asyncio.Event) -> None:
        await repeat("outbox", self.drain_once, stop, interval=self._idle_poll, wake=self.wake)


def _taken(rows: Sequence[OutboxEntry | Written]) -> Delete:
    """Deletes the rows Redis has taken."""
    return delete(OutboxEntry).where(OutboxEntry.id.in_([row.id for row in rows]))
