"""Cold reads coalesce: many concurrent misses cost one Redis round trip."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from gateway.batcher import KeyBatcher


async def test_concurrent_cold_reads_share_one_round_trip(redis_client: aioredis.Redis) -> None:
    await redis_client.mset({f"k{n}": f"v{n}" for n in range(100)})
    batcher = KeyBatcher(redis_client)
    values = await asyncio.gather(*(batcher.get(f"k{n}") for n in range(100)), batcher.get("none"))
    assert values == [f"v{n}".encode() for n in range(100)] + [None]
    assert batcher.round_trips == 1


async def test_a_key_in_flight_is_read_once(redis_client: aioredis.Redis) -> None:
    await redis_client.set("k", "v")
    batcher = KeyBatcher(redis_client)
    first = batcher.get("k")
    await asyncio.sleep(0)  # the batch is sent
    second = batcher.get("k")  # asked again while the first read is in flight
    assert await asyncio.gather(first, second) == [b"v", b"v"]
    assert batcher.round_trips == 1
