"""A suspension and a reinstatement reach a warm near-cache by push, within a second."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.conftest import Stack
from tests.integration.gateway.test_sessions import auth_path, login, wait_published


@pytest.fixture
def gateway_env() -> dict[str, str]:
    # Entries would be trusted for a minute: only the push can make the decision change.
    return {"TOLLGATE_NEAR_CACHE_TTL": "60"}


async def test_suspension_and_reinstatement_reach_a_warm_cache(stack: Stack) -> None:
    tenant = await stack.new_tenant(grace_days=1)
    account_id = await stack.customer(tenant, "alice")
    await wait_published(stack, tenant, "alice")
    token = (await (await login(stack, tenant, "alice")).json())["token"]

    async def proxy() -> tuple[int, str | None]:
        response = await stack.gateway.get(
            auth_path(token), headers={"Authorization": f"Bearer {token}"}
        )
        return response.status, response.headers.get("X-Tollgate-Reason")

    assert await proxy() == (200, None)
    await stack.api.post(  # the worker's own scheduler, not the clock move, evaluates
        "/v1/test/clock", json={"advance_days": 1, "settle": False}, headers=stack.operator
    )

    async def suspended() -> bool:
        # The gateway alone would say "entitlement_expired" (valid_until has passed);
        # "payment_overdue" can only come from the worker's pushed record.
        return await proxy() == (403, "payment_overdue")

    await stack.eventually(suspended, within=1.5)  # scheduler tick + push

    owed = (await (await stack.api.get(f"/v1/accounts/{account_id}", headers=tenant.admin)).json())[
        "balance_due"
    ]
    await stack.post(
        f"/v1/accounts/{account_id}/payments", tenant, {"amount": owed, "currency": "USD"}
    )

    async def reinstated() -> bool:
        return (await proxy())[0] == 200

    await stack.eventually(reinstated, within=1.0)


async def test_metrics_count_decisions(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    await stack.customer(tenant, "alice")
    await wait_published(stack, tenant, "alice")
    await stack.gateway.get(f"/v1/auth?tenant={tenant.id}")
    text = await (await stack.gateway.get("/metrics")).text()
    assert 'tollgate_gateway_decisions_total{endpoint="authorize",outcome="allow"' in text
    assert 'tollgate_gateway_decisions_total{endpoint="auth",outcome="unauthorized"' in text
    assert "tollgate_gateway_near_cache_hits_total" in text
    assert "tollgate_gateway_request_seconds_bucket" in text


async def test_a_denial_never_reads_an_allowing_standing(stack: Stack) -> None:
    """Between the moment a record's valid_until passes and the worker's next record, the
    gateway denies on its own: it says what the account has become, never "grace"."""
    tenant = await stack.new_tenant()
    await stack.customer(tenant, "gail")  # owes its first invoice: grace
    await stack.wait_allowed(tenant, "gail")
    await stack.api.post(  # past the grace period; the worker evaluates in its own time
        "/v1/test/clock", json={"advance_days": 31, "settle": False}, headers=stack.operator
    )
    seen = set()
    for _ in range(60):
        answer = await stack.authorize(tenant, "gail")
        assert not answer["allow"]
        seen.add((answer["standing"], answer["reason"]))
        await asyncio.sleep(0.02)
    assert seen <= {("suspended", "entitlement_expired"), ("suspended", "payment_overdue")}, seen
