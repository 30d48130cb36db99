"""The gateway's write-back of active users, against a real Redis that loses its data."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from gateway.logins.sessions import utc_day
from gateway.logins.writeback import WriteBack
from shared import keys


async def test_users_seen_before_a_loss_are_written_again_when_it_is_announced(
    redis_client: aioredis.Redis,
) -> None:
    writeback, now = WriteBack(redis_client), time.time()
    day = utc_day(now)
    listed = keys.usage_accounts_key(day)
    writeback.active("t1", "acc1", "ann", now)
    await writeback.flush()
    assert await redis_client.smembers(listed) == {b"t1:acc1"}

    await redis_client.flushall()  # Redis loses the day's lists and sets
    writeback.active("t1", "acc1", "ann", now)  # ann logs in again before the rebuild ends
    writeback.active("t1", "acc1", "bob", now)  # and bob, first seen after the loss
    await writeback.flush()
    assert await redis_client.smembers(keys.active_users_key("t1", "acc1", day)) == {b"bob"}

    writeback.forget_seen()  # the worker announces the rebuilt view
    await writeback.flush()
    assert await redis_client.smembers(listed) == {b"t1:acc1"}  # the fold will see it
    users = await redis_client.smembers(keys.active_users_key("t1", "acc1", day))
    assert users == {b"ann", b"bob"}
