"""The standing loop across real processes: `tollgate worker` and `tollgate gateway`
started as subprocesses on real Redis and on SQLite and PostgreSQL.

A customer subscribes and is allowed; the invoice stays unpaid while the shared test
clock moves past the grace period, and the gateway denies with the reason; a payment is
recorded and the gateway allows again -- within one second, measured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import OPERATOR, Processes

pytestmark = pytest.mark.e2e


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(raise_for_status=False) as session:
        yield session


async def _call(
    http: aiohttp.ClientSession, method: str, url: str, key: str, body: Any = None
) -> dict[str, Any]:
    async with http.request(
        method, url, json=body, headers={"Authorization": f"Bearer {key}"}
    ) as response:
        payload: dict[str, Any] = await response.json(content_type=None)
        assert response.status < 300, payload
        return payload


async def test_standing_follows_billing_across_processes(
    processes: Processes, http: aiohttp.ClientSession
) -> None:
    api, gateway = processes.api, processes.gateway
    tenant = await _call(http, "POST", f"{api}/v1/tenants", OPERATOR, {"name": "E2E SaaS"})
    admin, gateway_key = tenant["admin_key"], tenant["gateway_key"]
    await _call(http, "POST", f"{api}/v1/plans", admin,
                {"code": "pro", "name": "Pro", "currency": "USD", "amount": "30.00"})  # fmt: skip
    account = await _call(http, "POST", f"{api}/v1/accounts", admin, {"name": "Customer"})
    base = f"{api}/v1/accounts/{account['id']}"
    await _call(http, "POST", f"{base}/users", admin, {"external_id": "erin@customer.test"})
    await _call(http, "POST", f"{base}/subscriptions", admin, {"plan": "pro"})

    async def decision() -> dict[str, Any]:
        return await _call(
            http, "POST", f"{gateway}/v1/authorize", gateway_key, {"user": "erin@customer.test"}
        )

    async def wait_for(predicate: Any, within: float) -> float:
        start = time.monotonic()
        while not predicate(await decision()):
            assert time.monotonic() - start < within, await decision()
            await asyncio.sleep(0.005)
        return time.monotonic() - start

    # A new tenant's gateway key reaches Redis through the outbox, like everything else:
    # eventually (milliseconds, more while SQLite's write lock is busy), not at once.
    start = time.monotonic()
    while True:
        async with http.post(
            f"{gateway}/v1/authorize",
            json={"user": "erin@customer.test"},
            headers={"Authorization": f"Bearer {gateway_key}"},
        ) as response:
            if response.status != 401:
                break
        assert time.monotonic() - start < 5, "the gateway key was never published"
        await asyncio.sleep(0.01)
    await wait_for(lambda d: d["allow"], within=5)

    moved = {"advance_days": 31, "settle": False}
    await _call(http, "POST", f"{api}/v1/test/clock", OPERATOR, moved)
    # The gateway may deny first on its own (the record's valid_until lapses at day 31,
    # reason "entitlement_expired"); the worker's suspension follows.
    await wait_for(lambda d: d["reason"] == "payment_overdue", within=5)
    denied = await decision()
    assert (denied["standing"], denied["reason"]) == ("suspended", "payment_overdue")

    owed = (await _call(http, "GET", base, admin))["balance_due"]
    await _call(http, "POST", f"{base}/payments", admin, {"amount": owed, "currency": "USD"})
    flip = await wait_for(lambda d: d["allow"], within=1.0)
    allowed = await decision()
    assert (allowed["standing"], allowed["reason"]) == ("active", "in_good_standing")
    print(f"payment reached the gateway's decision in {flip * 1000:.1f} ms")
