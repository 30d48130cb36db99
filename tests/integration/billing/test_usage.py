"""Usage the gateways record reaches SQL, and folding it again changes nothing."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.invoicing.usage import UsageFolder
from shared.clock import SystemClock
from tests.integration.conftest import Stack
from tests.integration.gateway.test_sessions import enterprise, login, seats_plan, wait_published


async def test_logins_active_users_and_peak_sessions_are_billed_from_sql(
    stack: Stack, redis_client: aioredis.Redis, database_url: str
) -> None:
    tenant = await stack.new_tenant()
    await seats_plan(stack, tenant, 5, "deny_new")
    users = ["ann", "bob", "cat"]
    account_id = await enterprise(stack, tenant, users, "team-deny_new")
    await wait_published(stack, tenant, "ann")
    for user in ["ann", "ann", "bob", "cat"]:  # four logins by three users
        assert (await login(stack, tenant, user)).status == 201
    await asyncio.sleep(1.5)  # the gateway's write-back flushes about once a second

    engine = create_engine(database_url)
    try:
        folder = UsageFolder(session_factory(engine), redis_client, SystemClock())
        assert await folder.fold_recent() == 1
        first = await (
            await stack.api.get(f"/v1/accounts/{account_id}/usage", headers=tenant.admin)
        ).json()
        assert await folder.fold_recent() == 1  # again: same totals, nothing added
    finally:
        await engine.dispose()
    second = await (
        await stack.api.get(f"/v1/accounts/{account_id}/usage", headers=tenant.admin)
    ).json()
    assert first == second
    [today] = first["data"]
    assert (today["logins"], today["active_users"], today["peak_sessions"]) == (4, 3, 4)
    # the fold that counted them is a usage.folded event; the one that added nothing is not
    listed = await stack.api.get(
        f"/v1/events?type=usage.folded&account_id={account_id}", headers=tenant.admin
    )
    [folded] = (await listed.json())["data"]
    assert folded["data"]["id"] == f"{account_id}:{today['day']}"
    changes = folded["data"]["changes"]
    assert (changes["logins"], changes["active_users"], changes["peak_sessions"]) == (
        [None, 4], [None, 3], [None, 4]
    )  # fmt: skip


async def test_usage_never_counts_backwards_when_redis_loses_the_days_counters(
    stack: Stack, redis_client: aioredis.Redis, database_url: str
) -> None:
    tenant = await stack.new_tenant()
    await seats_plan(stack, tenant, 5, "deny_new")
    account_id = await enterprise(stack, tenant, ["ann", "bob", "cat"], "team-deny_new")
    await wait_published(stack, tenant, "ann")
    engine = create_engine(database_url)
    folder = UsageFolder(session_factory(engine), redis_client, SystemClock())

    async def usage() -> tuple[int, int, int]:
        response = await stack.api.get(f"/v1/accounts/{account_id}/usage", headers=tenant.admin)
        [today] = (await response.json())["data"]
        return today["logins"], today["active_users"], today["peak_sessions"]

    try:
        for user in ["ann", "bob", "cat", "ann"]:
            assert (await login(stack, tenant, user)).status == 201
        await asyncio.sleep(1.5)  # the gateway's write-back flushes about once a second
        await folder.fold_recent()
        assert await usage() == (4, 3, 4)

        await redis_client.flushall()  # the day's counters are gone; the worker rebuilds
        await wait_published(stack, tenant, "ann")
        for user in ["ann", "bob"]:
            assert (await login(stack, tenant, user)).status == 201

        async def folded() -> bool:  # once the gateways' write-back has listed the account
            await folder.fold_recent()
            return await usage() == (6, 3, 4)

        # 4 + 2 logins; distinct users and the peak cannot be summed: never less than before
        await stack.eventually(folded, within=10)
        await folder.fold_recent()  # folding again adds nothing
        assert await usage() == (6, 3, 4)
    finally:
        await engine.dispose()
