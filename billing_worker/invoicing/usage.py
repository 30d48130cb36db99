"""Folds the gateways' usage counters from Redis into SQL, where billing reads them.

The gateways count, per account and UTC day: logins, the peak of concurrent sessions and
the set of distinct active users. Folding reads the *current totals* and writes them to
``usage_daily``, so folding the same day twice, or after a crash, writes the same numbers:
nothing is ever counted twice. Today is folded again and again as it grows; a day's
counters stay in Redis for weeks, long after its last fold.

Redis may lose the counters (a flush, a restart without persistence) and start them again
from zero. SQL must never count backwards, so the fold marks each counters hash with an
*epoch* (a token, set once) and remembers the epoch and the login total it read. Within an
epoch the total replaces what that epoch added before; a new epoch's total is added to
what earlier ones counted. A peak and a number of distinct users cannot be summed across a
loss (the same users return): SQL keeps the larger of what it had and what Redis says.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.models import Account, UsageDaily
from billing_worker.runtime.loop import report
from shared import keys
from shared.clock import Clock
from shared.redis_connection import RedisClient


async def _read_counters(
    client: RedisClient, day: str, pairs: list[tuple[str, str]]
) -> list[tuple[dict[bytes, bytes], int]]:
    """Each account's counters hash (with its epoch, set now if it had none) and the number
    of its distinct active users."""
    marked = client.register_script(_EPOCH_SCRIPT)
    await client.script_load(_EPOCH_SCRIPT)
    async with client.pipeline(transaction=False) as pipe:
        for tenant_id, account_id in pairs:
            usage = keys.usage_key(tenant_id, account_id, day)
            pipe.execute_command("EVALSHA", marked.sha, 1, usage, secrets.token_hex(8))
            pipe.scard(keys.active_users_key(tenant_id, account_id, day))
        results = await pipe.execute()
    return [(_as_dict(results[2 * n]), int(results[2 * n + 1])) for n in range(len(pairs))]


#: Mark an existing counters hash with an epoch (once), and read it. A hash that expired
#: is not re-created (it would never expire again).
_EPOCH_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
end
return redis.call('HGETALL', KEYS[1])
"""


def _as_dict(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


async def fold_day(
    sessions: async_sessionmaker[AsyncSession], client: RedisClient, day: str, now: datetime
) -> int:
    """Fold one UTC day's counters of every account that had usage; returns accounts folded."""
    members = await client.smembers(keys.usage_accounts_key(day))
    texts = (m.decode() if isinstance(m, bytes) else str(m) for m in members)
    pairs = sorted((t, a) for t, _, a in (text.partition(":") for text in texts) if a)
    if not pairs:
        return 0
    counters = dict(zip(pairs, await _read_counters(client, day, pairs), strict=True))
    async with sessions() as session, session.begin():
        # Only accounts SQL knows, each under its own tenant: Redis is not trusted blindly.
        known = set(
            (
                await session.execute(
                    select(Account.tenant_id, Account.id).where(
                        Account.id.in_([account_id for _, account_id in pairs])
                    )
                )
            ).all()
        )
        folded = [pair for pair in pairs if pair in known]
        existing = {
            row.account_id: row
            for row in (
                await session.scalars(
                    select(UsageDaily)
                    .where(
                        tuple_(UsageDaily.account_id, UsageDaily.day).in_(
                            [(account_id, day) for _, account_id in folded]
                        )
                    )
                    .with_for_update()
                )
            ).all()
        }
        for tenant_id, account_id in folded:
            counted, active = counters[(tenant_id, account_id)]
            row = existing.get(account_id)
            if row is None:
                row = UsageDaily(
                    tenant_id=tenant_id, account_id=account_id, day=day, logins=0,
                    active_users=0, peak_sessions=0, redis_epoch=None, redis_logins=0,
                )  # fmt: skip
                session.add(row)
            _fold(row, counted, active, now)
    return len(folded)


def _fold(row: UsageDaily, counted: dict[bytes, Any], active: int, now: datetime) -> None:
    epoch = counted.get(b"epoch", b"").decode() or None
    logins = int(counted.get(b"logins", 0))
    if epoch is not None and epoch == row.redis_epoch:
        row.logins += max(logins - row.redis_logins, 0)
    else:  # a new lifetime of the counters: what it counted is new
        row.logins += logins
    row.redis_epoch, row.redis_logins = epoch, logins
    row.peak_sessions = max(row.peak_sessions, int(counted.get(b"peak", 0)))
    row.active_users = max(row.active_users, active)
    row.updated_at = now


class UsageFolder:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        client: RedisClient,
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
