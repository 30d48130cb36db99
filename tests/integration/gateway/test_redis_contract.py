"""The compare-and-set against a real Redis: newer wins, older and equal never do."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from shared import keys
from shared.entitlement import EntitlementRecord, decode_record, encode_record
from shared.redis_scripts import CAS_SET
from shared.states import Standing


def record(version: int, standing: Standing) -> EntitlementRecord:
    return EntitlementRecord(
        tenant_id="ten_a", account_id="acc_1", version=version, standing=standing, reason="x"
    )


async def test_reordered_writes_never_roll_the_record_back(
    redis_client: aioredis.Redis,
) -> None:
    cas = redis_client.register_script(CAS_SET)
    key = keys.account_key("ten_a", "acc_1")

    async def write(rec: EntitlementRecord) -> int:
        return int(await cas(keys=[key], args=[rec.version, encode_record(rec), ""]))

    assert await write(record(2, Standing.SUSPENDED)) == 1
    assert await write(record(1, Standing.ACTIVE)) == 0  # late, older: refused
    assert await write(record(2, Standing.ACTIVE)) == 0  # duplicate version: refused
    stored = await redis_client.get(key)
    assert stored is not None
    assert decode_record(stored).standing is Standing.SUSPENDED
    assert await write(record(3, Standing.ACTIVE)) == 1
    stored = await redis_client.get(key)
    assert stored is not None
    assert decode_record(stored).standing is Standing.ACTIVE


async def test_a_write_is_announced_on_the_invalidation_channel(
    redis_client: aioredis.Redis,
) -> None:
    cas = redis_client.register_script(CAS_SET)
    key = keys.account_key("ten_a", "acc_1")
    async with redis_client.pubsub() as pubsub:
        await pubsub.subscribe(keys.INVALIDATION_CHANNEL)
        await pubsub.get_message(timeout=1)  # the subscribe confirmation
        rec = record(1, Standing.ACTIVE)
        await cas(keys=[key], args=[1, encode_record(rec), keys.INVALIDATION_CHANNEL])
        message = None
        for _ in range(50):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message:
                break
            await asyncio.sleep(0.01)
        assert message is not None
        assert message["data"] == key.encode()
