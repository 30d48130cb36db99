"""Load with users of known standing while Redis is paused, stopped, flushed and restarted
empty: never a wrong allow, never a refusal of a valid key, and recovery by itself."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from tests.conftest import OwnRedis
from tests.integration.conftest import Stack, Tenant

#: A cached entry is trusted this long: short, so that every fault reaches the decisions.
NEAR_CACHE_TTL = 0.2


@pytest.fixture
def stack_redis_url(own_redis: OwnRedis) -> str:
    return own_redis.url


@pytest.fixture
def gateway_env() -> dict[str, str]:
    return {"TOLLGATE_NEAR_CACHE_TTL": str(NEAR_CACHE_TTL), "TOLLGATE_REDIS_TIMEOUT": "0.2"}


class Load:
    """Authorize calls for an allowed and a suspended user, back to back, tallied."""

    def __init__(self, stack: Stack, tenant: Tenant) -> None:
        self._stack, self._tenant = stack, tenant
        self.answers: Counter[tuple[str, int, bool | None]] = Counter()
        self.last_allowed = 0.0
        self._stop = asyncio.Event()

    async def _one(self, user: str) -> None:
        response = await asyncio.wait_for(
            self._stack.gateway.post(
                "/v1/authorize", json={"user": user}, headers=self._tenant.gateway
            ),
            5,
        )
        body = await response.json()
        allow = body.get("allow") if response.status == 200 else None
        self.answers[(user, response.status, allow)] += 1
        if user == "payer" and allow:
            self.last_allowed = time.monotonic()

    async def run(self) -> None:
        while not self._stop.is_set():
            await asyncio.gather(self._one("payer"), self._one("debtor"))
            await asyncio.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()


async def _recovery(stack: Stack, load: Load, fault: Callable[[], Awaitable[None]]) -> float:
    """Seconds from the end of ``fault`` until the gateway is ready (the view whole) and
    the paying user allowed again, past what its near-cache still held."""
    await fault()
    ended = time.monotonic()
    await asyncio.sleep(NEAR_CACHE_TTL)
    while True:
        ready = (await stack.gateway.get("/readyz")).status == 200
        if ready and load.last_allowed > ended + NEAR_CACHE_TTL:
            return time.monotonic() - ended
        if time.monotonic() - ended > 15:
            raise AssertionError("the gateway did not recover within 15 s")
        await asyncio.sleep(0.02)


async def _under_faults(stack: Stack, own_redis: OwnRedis, rounds: int) -> dict[str, list[float]]:
    """Load with a paying and a suspended user through every fault, ``rounds`` times; the
    recovery seconds of each. Asserts what must hold whatever happened to Redis."""
    tenant = await stack.new_tenant()
    await stack.customer(tenant, "payer")
    long_ago = (datetime.now(UTC) - timedelta(days=45)).isoformat()
    await stack.customer(tenant, "debtor", start_at=long_ago)  # unpaid: suspended

    async def settled() -> bool:
        payer = await stack.authorize(tenant, "payer")
        debtor = await stack.authorize(tenant, "debtor")
        return bool(payer["allow"]) and debtor["reason"] == "payment_overdue"

    await stack.eventually(settled)
    load = Load(stack, tenant)
    running = asyncio.create_task(load.run())

    async def sigstop() -> None:
        own_redis.pause()
        await asyncio.sleep(1)
        own_redis.resume()

    async def client_pause() -> None:
        client = aioredis.Redis.from_url(own_redis.url)
        await client.execute_command("CLIENT", "PAUSE", 1000, "ALL")
        await client.aclose()
        await asyncio.sleep(1)

    async def flush() -> None:
        client = aioredis.Redis.from_url(own_redis.url)
        await client.flushall()
        await client.aclose()

    async def restart_empty() -> None:
        own_redis.stop()
        await asyncio.sleep(0.5)
        own_redis.start()

    faults = {"sigstop": sigstop, "flush": flush, "restart": restart_empty}
    if rounds > 1:
        faults["client_pause"] = client_pause
    recovery: dict[str, list[float]] = {name: [] for name in faults}
    try:
        for _ in range(rounds):
            for name, fault in faults.items():
                recovery[name].append(await _recovery(stack, load, fault))
    finally:
        load.stop()
        await running
    print("recovery seconds:", {k: [round(v, 2) for v in vs] for k, vs in recovery.items()},
          dict(load.answers))  # fmt: skip
    # The suspended user is never allowed, whatever happened to Redis.
    assert not any(allow for (user, _s, allow), _n in load.answers.items() if user == "debtor")
    # A valid key was never refused as invalid; outages were 503s.
    assert {status for (_u, status, _a) in load.answers} <= {200, 503}
    assert all(s < 10 for seconds in recovery.values() for s in seconds), recovery
    return recovery


async def test_faults_never_cause_a_wrong_allow_and_heal_by_themselves(
    stack: Stack, own_redis: OwnRedis
) -> None:
    await _under_faults(stack, own_redis, rounds=1)


@pytest.mark.long
async def test_faults_again_and_again_under_sustained_load(
    stack: Stack, own_redis: OwnRedis
) -> None:
    """The long variant (``TOLLGATE_LONG_TESTS=1``, as ``.ci/run`` sets): three rounds of
    every fault, Redis's own CLIENT PAUSE too, with the recovery times reported."""
    recovery = await _under_faults(stack, own_redis, rounds=3)
    assert all(len(seconds) == 3 for seconds in recovery.values())
