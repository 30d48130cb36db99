"""A warm answer is reused only while what it was decided from holds.

The gateway keeps each ``/v1/authorize`` answer and each ``/v1/auth`` allow with the
near-cache entries it was decided from (gateway.decisions.answers). Here the near-cache
trusts entries for a minute, so nothing but the worker's announcements and the passing of
time can change what it holds: each change a user would notice -- the account suspended
or degraded, the user disabled, the key revoked, the session ended,
the paid-for period running out -- must change the very next answers, never a stale one.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.integration.conftest import Stack, Tenant
from tests.integration.gateway.test_proxy_contract import degrade, suspend
from tests.integration.gateway.test_sessions import login, proxy_key, wait_published


@pytest.fixture
def gateway_env() -> dict[str, str]:
    return {"TOLLGATE_NEAR_CACHE_TTL": "60"}


async def _warm(stack: Stack, tenant: Tenant, user: str) -> dict[str, Any]:
    await stack.wait_allowed(tenant, user)
    answers = [await stack.authorize(tenant, user) for _ in range(3)]
    assert answers[0] == answers[1] == answers[2]  # the same answer, from the memo
    assert answers[0]["allow"]
    return answers[0]


async def test_a_suspended_account_is_refused_from_the_next_answer(
    stack: Stack, redis_client: aioredis.Redis
) -> None:
    tenant = await stack.new_tenant()
    account = await stack.customer(tenant, "alice")
    await _warm(stack, tenant, "alice")
    await suspend(redis_client, tenant.id, account)

    async def refused() -> bool:
        return not (await stack.authorize(tenant, "alice"))["allow"]

    await stack.eventually(refused, within=1.0)
    answer = await stack.authorize(tenant, "alice")
    assert (answer["standing"], answer["reason"]) == ("suspended", "payment_overdue")


async def test_a_disabled_user_and_a_revoked_key_change_the_warm_answer(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    account = await stack.customer(tenant, "bea")
    await stack.customer(tenant, "cal")
    await _warm(stack, tenant, "bea")
    await _warm(stack, tenant, "cal")
    users = await stack.api.get(f"/v1/accounts/{account}/users", headers=tenant.admin)
    [user] = (await users.json())["data"]
    await stack.api.patch(
        f"/v1/users/{user['id']}", json={"status": "disabled"}, headers=tenant.admin
    )

    async def disabled() -> bool:
        return (await stack.authorize(tenant, "bea"))["reason"] == "user_disabled"

    await stack.eventually(disabled, within=1.0)
    assert (await stack.authorize(tenant, "cal"))["allow"]  # the other user is unchanged

    keys = await stack.api.get("/v1/tenant/keys", headers=tenant.admin)
    [gateway_key] = [k for k in (await keys.json())["data"] if k["kind"] == "gateway"]
    await stack.api.delete(f"/v1/tenant/keys/{gateway_key['id']}", headers=tenant.admin)

    async def refused() -> bool:
        response = await stack.gateway.post(
            "/v1/authorize", json={"user": "cal"}, headers=tenant.gateway
        )
        return response.status == 401

    await stack.eventually(refused, within=1.0)


async def test_the_paid_for_period_running_out_changes_the_warm_answer(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    await stack.customer(tenant, "dora")  # owes its first invoice: in grace until it lapses
    before = await _warm(stack, tenant, "dora")
    assert before["valid_until"] is not None
    await stack.api.post(  # past valid_until; the worker re-evaluates in its own time
        "/v1/test/clock", json={"advance_days": 31, "settle": False}, headers=stack.operator
    )
    for _ in range(20):
        answer = await stack.authorize(tenant, "dora")
        assert not answer["allow"], answer


async def test_a_warm_proxy_pass_ends_with_the_session_and_with_the_standing(
    stack: Stack, redis_client: aioredis.Redis
) -> None:
    tenant = await stack.new_tenant()
    account = await stack.customer(tenant, "erin")
    await wait_published(stack, tenant, "erin")
    first, second = [(await (await login(stack, tenant, "erin")).json()) for _ in range(2)]

    async def auth(session: dict[str, Any], method: str = "GET") -> int:
        headers = {
            "Authorization": f"Bearer {session['token']}",
            "X-Original-Method": method,
            **proxy_key(tenant),
        }
        return (await stack.gateway.get("/v1/auth", headers=headers)).status

    for session in (first, second):
        assert [await auth(session) for _ in range(3)] == [200, 200, 200]
    ended = await stack.gateway.delete(
        f"/v1/sessions/{first['session_id']}", headers=tenant.gateway
    )
    assert ended.status == 204
    assert await auth(first) == 401  # logged out here: at once
    assert await auth(second) == 200

    await degrade(redis_client, tenant.id, account)  # read-only: reads pass, writes do not

    async def writes_refused() -> bool:
        return await auth(second, "POST") == 403

    await stack.eventually(writes_refused, within=1.0)
    assert await auth(second, "GET") == 200
    await suspend(redis_client, tenant.id, account)

    async def refused() -> bool:
        return await auth(second) == 403

    await stack.eventually(refused, within=1.0)
