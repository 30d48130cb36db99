"""Writes the hot path owes Redis but need not wait for, flushed about once a second.

- Session touches: a session used through ``/v1/auth`` has its idle expiry extended.
- Active users: the first time this process sees a user of an account on a UTC day, the
  user joins that day's active-user set (what active-user plans bill from), and the account
  the day's list of accounts to fold; every user seen that day again after Redis may have
  lost its data (the worker announces a rebuilt view, or the subscription was cut).
- Decisions: how many allows and denials (by reason) each tenant got each minute, added
  to a per-tenant, per-minute hash (``keys.decisions_key``) the console reads.
"""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError

from gateway.logins.sessions import USAGE_RETENTION_SECONDS, queue_touch, utc_day
from gateway.view.refs import SessionRef
from shared import keys
from shared.redis_connection import RedisClient

log = logging.getLogger(__name__)
DAY = 86400.0


class WriteBack:
    def __init__(self, client: RedisClient, *, interval: float = 1.0) -> None:
        self._client = client
        self._interval = interval
        self._touches: dict[SessionRef, tuple[int, float]] = {}
        self._active: set[tuple[str, str, str, str]] = set()
        self._seen: set[tuple[str, str, str, str]] = set()
        self._seen_day = ""
        #: The UNIX time at which ``_seen_day`` ends: the date is formatted once a day.
        self._day_ends = 0.0
        #: (tenant, outcome, reason, minute) -> decisions since the last flush
        self._decisions: dict[tuple[str, str, str, int], int] = {}

    def touched(self, ref: SessionRef, idle_seconds: int, now: float) -> None:
        self._touches[ref] = (idle_seconds, now)

    def active(self, tenant_id: str, account_id: str, user_id: str, now: float) -> None:
        if not self._day_ends - DAY <= now < self._day_ends:
            self._seen.clear()
            self._seen_day = utc_day(now)
            self._day_ends = (now // DAY + 1) * DAY
        mark = (tenant_id, account_id, user_id, self._seen_day)
        if mark not in self._seen:
            self._seen.add(mark)
            self._active.add(mark)

    def decided(self, tenant_id: str, outcome: str, reason: str, now: float) -> None:
        mark = (tenant_id, outcome, reason, int(now // 60))  # formatted at the flush
        self._decisions[mark] = self._decisions.get(mark, 0) + 1

    def forget_seen(self) -> None:
        """Redis may have lost its data (the view was rebuilt, or the subscription was cut):
        every user seen today is written again at the next flush. Users seen between the
        loss and this call are among them; adding a user twice changes nothing."""
        self._active |= self._seen

    async def flush(self) -> None:
        touches, self._touches = self._touches, {}
        active, self._active = self._active, set()
        decisions, self._decisions = self._decisions, {}
        if not touches and not active and not decisions:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for ref, (idle_seconds, now) in touches.items():
                queue_touch(pipe, ref, idle_seconds, now)
            for tenant_id, account_id, user_id, day in active:
                users = keys.active_users_key(tenant_id, account_id, day)
                pipe.sadd(users, user_id)
                pipe.expire(users, USAGE_RETENTION_SECONDS)
                pipe.sadd(keys.usage_accounts_key(day), f"{tenant_id}:{account_id}")
                pipe.expire(keys.usage_accounts_key(day), USAGE_RETENTION_SECONDS)
            for (tenant_id, outcome, reason, minute), count in decisions.items():
                counts = keys.decisions_key(tenant_id, minute)
                pipe.hincrby(counts, f"{outcome}:{reason}", count)
                pipe.expire(counts, keys.DECISIONS_RETENTION_SECONDS)
            await pipe.execute()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with asyncio.timeout(self._interval):
                    await stop.wait()
            except TimeoutError:
                pass
            try:
                await self.flush()
            except (RedisError, OSError) as exc:
                log.warning("writeback.flush_failed: %s", exc)
