"""Worker -> outbox -> Redis -> gateway, in one process over real HTTP, Redis and SQL."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis

from tests.integration.conftest import Stack


def _a_month_after(day: date) -> date:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


async def test_unpaid_invoice_suspends_on_day_31_and_payment_reinstates(stack: Stack) -> None:
    started = datetime.now(UTC).date()
    tenant = await stack.new_tenant()
    account_id = await stack.customer(tenant, "alice")

    async def decision() -> dict[str, Any]:
        return await stack.authorize(tenant, "alice")

    async def allowed() -> bool:
        return bool((await decision())["allow"])

    await stack.wait_allowed(tenant, "alice")
    assert (await decision())["standing"] == "grace"  # due today, unpaid: grace, still allowed

    await stack.api.post("/v1/test/clock", json={"advance_days": 29}, headers=stack.operator)
    await stack.eventually(allowed)
    assert (await decision())["reason"] == "payment_due"

    await stack.api.post("/v1/test/clock", json={"advance_days": 1}, headers=stack.operator)

    async def suspended() -> bool:
        return (await decision())["reason"] == "payment_overdue"

    await stack.eventually(suspended)
    assert (await decision())["allow"] is False

    # Thirty days on, the next month has been invoiced too if its first day has come (it
    # has after a 30-day month, not after a 31-day one): pay everything owed.
    owed = "98.00" if started + timedelta(days=30) >= _a_month_after(started) else "49.00"
    account = await (await stack.api.get(f"/v1/accounts/{account_id}", headers=tenant.admin)).json()
    assert account["balance_due"] == owed
    await stack.post(
        f"/v1/accounts/{account_id}/payments", tenant, {"amount": owed, "currency": "USD"}
    )
    await stack.eventually(allowed, within=1.0)
    assert (await decision())["standing"] == "active"


async def test_unknown_user_and_other_tenants_user_get_the_same_answer(stack: Stack) -> None:
    acme, globex = await stack.new_tenant("Acme"), await stack.new_tenant("Globex")
    await stack.customer(globex, "bob")

    await stack.wait_allowed(globex, "bob")
    await stack.wait_key(acme)
    other_tenants_user = await stack.gateway.post(
        "/v1/authorize", json={"user": "bob"}, headers=acme.gateway
    )
    unknown_user = await stack.gateway.post(
        "/v1/authorize", json={"user": "nobody"}, headers=acme.gateway
    )
    assert other_tenants_user.status == unknown_user.status == 200
    first, second = await other_tenants_user.json(), await unknown_user.json()
    assert {**first, "user": None} == {**second, "user": None}
    assert first["reason"] == "unknown_user"


async def test_gateway_refuses_bad_keys_and_admin_keys(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    for headers in ({}, {"Authorization": "Bearer nope"}, tenant.admin):
        response = await stack.gateway.post("/v1/authorize", json={"user": "x"}, headers=headers)
        assert response.status == 401
        assert response.content_type == "application/problem+json"


async def test_gateway_validates_the_body(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    await stack.wait_key(tenant)
    response = await stack.gateway.post("/v1/authorize", json={"usr": "x"}, headers=tenant.gateway)
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "user"


async def test_a_flushed_redis_heals_itself_and_a_rebuild_restores_it_too(
    stack: Stack, redis_client: aioredis.Redis, database_url: str
) -> None:
    from billing_worker.db.engine import create_engine, session_factory
    from billing_worker.jobs.rebuild import rebuild
    from shared.clock import SystemClock

    tenant = await stack.new_tenant()
    await stack.customer(tenant, "alice")

    async def answer() -> tuple[int, bool]:
        response = await stack.gateway.post(
            "/v1/authorize", json={"user": "alice"}, headers=tenant.gateway
        )
        return response.status, response.status == 200 and (await response.json())["allow"]

    async def allowed() -> bool:
        return (await answer())[1]

    async def ready() -> bool:
        return (await stack.gateway.get("/readyz")).status == 200

    await stack.eventually(allowed)
    assert await ready()
    await redis_client.flushall()
    assert not await ready()  # the view is gone: not ready until it is rebuilt

    # The worker notices within a second and rebuilds; meanwhile the gateway key it cannot
    # read is an outage (503 by the fail policy), never an invalid key (401).
    async def healed() -> bool:
        status, allow = await answer()
        assert status in (200, 503)
        return allow and await ready()

    await stack.eventually(healed, within=5)

    engine = create_engine(database_url)
    try:
        counts = await rebuild(session_factory(engine), redis_client, SystemClock(), clean=True)
    finally:
        await engine.dispose()
    assert (counts["keys"], counts["accounts"], counts["users"]) == (1, 1, 1)
    await stack.eventually(allowed)
    assert await ready()
