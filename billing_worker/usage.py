"""Folds the gateways' usage counters from Redis into SQL, where billing reads them.

The gateways count, per account and UTC day: logins, the peak of concurrent sessions
and the set of distinct active users. Folding copies the *current totals* into
``usage_daily`` with an upsert, so folding the same day twice, or after a crash, writes
the same numbers: nothing is ever counted twice. Today is folded again and again as it
grows; a day's counters stay in Redis for weeks, long after its last fold.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.models import Account, UsageDaily
from billing_worker.jobs import report
from shared import keys
from shared.clock import Clock


async def fold_day(
    sessions: async_sessionmaker[AsyncSession], client: aioredis.Redis, day: str, now: datetime
) -> int:
    """Copy one UTC day's counters of every account that had usage; returns accounts folded."""
    members = await client.smembers(keys.usage_accounts_key(day))
    texts = (m.decode() if isinstance(m, bytes) else str(m) for m in members)
    pairs = sorted(tuple(text.split(":", 1)) for text in texts if ":" in text)
    if not pairs:
        return 0
    async with client.pipeline(transaction=False) as pipe:
        for tenant_id, account_id in pairs:
            pipe.hgetall(keys.usage_key(tenant_id, account_id, day))
            pipe.scard(keys.active_users_key(tenant_id, account_id, day))
        results = await pipe.execute()
    rows = []
    for index, (tenant_id, account_id) in enumerate(pairs):
        counters: dict[bytes, bytes] = results[2 * index]
        rows.append(
            {
                "tenant_id": tenant_id,
                "account_id": account_id,
                "day": day,
                "logins": int(counters.get(b"logins", 0)),
                "peak_sessions": int(counters.get(b"peak", 0)),
                "active_users": int(results[2 * index + 1]),
                "updated_at": now,
            }
        )
    async with sessions() as session, session.begin():
        # Only accounts SQL knows, each under its own tenant: Redis is not trusted blindly.
        known = {
            (t, a)
            for t, a in (
                await session.execute(
                    select(Account.tenant_id, Account.id).where(
                        Account.id.in_([r["account_id"] for r in rows])
                    )
                )
            ).all()
        }
        rows = [r for r in rows if (r["tenant_id"], r["account_id"]) in known]
        if rows:
            insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
            statement = insert(UsageDaily).values(rows)
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=["account_id", "day"],
                    set_={
                        "logins": statement.excluded.logins,
                        "peak_sessions": statement.excluded.peak_sessions,
                        "active_users": statement.excluded.active_users,
                        "updated_at": statement.excluded.updated_at,
                    },
                )
            )
    return len(rows)


class UsageFolder:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        client: aioredis.Redis,
        clock: Clock,
        *,
        interval: float = 60.0,
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._clock = clock
        self._interval = interval

    async def fold_recent(self) -> int:
        """Today and yesterday (yesterday's last minutes arrive after midnight)."""
        now = self._clock.now()
        days = {(now - timedelta(days=back)).strftime("%Y-%m-%d") for back in (0, 1)}
        return sum([await fold_day(self._sessions, self._client, day, now) for day in days])

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.fold_recent()
            except Exception as exc:
                report("usage.fold", exc)
            try:
                async with asyncio.timeout(self._interval):
                    await stop.wait()
            except TimeoutError:
                pass
