"""Cold reads coalesce: many concurrent misses cost one Redis round trip."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from gateway.view.batcher import KeyBatcher, ScriptBatcher


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


async def test_concurrent_script_calls_share_one_round_trip(redis_client: aioredis.Redis) -> None:
    batcher = ScriptBatcher(redis_client, "return redis.call('INCRBY', KEYS[1], ARGV[1])")
    await batcher.call(["counter"], [0])  # the first call also loads the script
    before = batcher.round_trips
    totals = await asyncio.gather(*(batcher.call(["counter"], [n]) for n in range(1, 101)))
    assert len(set(totals)) == 100  # each call saw the counter at its own moment
    assert int(await redis_client.get("counter")) == 5050
    assert batcher.round_trips == before + 1


async def test_a_script_redis_forgot_is_loaded_again(redis_client: aioredis.Redis) -> None:
    batcher = ScriptBatcher(redis_client, "return ARGV[1]")
    assert await batcher.call([], ["before"]) == b"before"
    await redis_client.script_flush()  # as after a Redis restart
    assert await asyncio.gather(batcher.call([], ["a"]), batcher.call([], ["b"])) == [b"a", b"b"]


async def test_a_failing_call_fails_alone(redis_client: aioredis.Redis) -> None:
    batcher = ScriptBatcher(redis_client, "if ARGV[1] == 'bad' then error('refused') end return 1")
    results = await asyncio.gather(
        batcher.call([], ["ok"]), batcher.call([], ["bad"]), return_exceptions=True
    )
    assert results[0] == 1
    assert isinstance(results[1], ResponseError)
