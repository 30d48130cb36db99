"""What /v1/auth tells a reverse proxy: read-only accounts, trusted headers, Envoy."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared import keys
from shared.entitlement import decode_record, encode_record
from shared.redis_scripts import CAS_SET
from shared.states import Standing
from tests.integration.conftest import Stack
from tests.integration.gateway.test_sessions import auth_path, login, wait_published


async def republish(
    client: aioredis.Redis, tenant_id: str, account_id: str, **changes: Any
) -> None:
    """Publish a changed record the way the worker does (next version, compare-and-set)."""
    key = keys.account_key(tenant_id, account_id)
    raw = await client.get(key)
    assert raw is not None
    current = decode_record(raw)
    changed = replace(current, version=current.version + 1, **changes)
    cas = client.register_script(CAS_SET)
    await cas(keys=[key], args=[changed.version, encode_record(changed), keys.INVALIDATION_CHANNEL])


async def degrade(client: aioredis.Redis, tenant_id: str, account_id: str) -> None:
    """A degraded, read-only account, as the dunning ladder will publish it."""
    await republish(
        client,
        tenant_id,
        account_id,
        standing=Standing.DEGRADED,
        reason="payment_overdue",
        read_only=True,
    )


async def suspend(client: aioredis.Redis, tenant_id: str, account_id: str) -> None:
    await republish(
        client, tenant_id, account_id, standing=Standing.SUSPENDED, reason="payment_overdue"
    )


@pytest.fixture
async def degraded_token(stack: Stack, redis_client: aioredis.Redis) -> str:
    tenant = await stack.new_tenant()
    account_id = await stack.customer(tenant, "alice")
    await wait_published(stack, tenant, "alice")
    token = str((await (await login(stack, tenant, "alice")).json())["token"])
    await degrade(redis_client, tenant.id, account_id)

    async def degraded() -> bool:
        response = await stack.gateway.get(
            auth_path(token), headers={"Authorization": f"Bearer {token}"}
        )
        return response.headers.get("X-Tollgate-Standing") == "degraded"

    await stack.eventually(degraded)
    return token


@pytest.mark.parametrize(
    ("header", "method", "status"),
    [
        ("X-Original-Method", "GET", 200),  # nginx
        ("X-Original-Method", "HEAD", 200),
        ("X-Original-Method", "POST", 403),
        ("X-Forwarded-Method", "DELETE", 403),  # Traefik, Caddy
        ("X-Forwarded-Method", "OPTIONS", 200),
    ],
)
async def test_read_only_account_may_only_read(
    stack: Stack, degraded_token: str, header: str, method: str, status: int
) -> None:
    response = await stack.gateway.get(
        auth_path(degraded_token),
        headers={"Authorization": f"Bearer {degraded_token}", header: method},
    )
    assert response.status == status
    if status == 403:
        assert response.headers["X-Tollgate-Reason"] == "read_only"
    else:
        assert response.headers["X-Tollgate-Read-Only"] == "true"


@pytest.mark.parametrize(("method", "status"), [("GET", 200), ("POST", 403), ("PUT", 403)])
async def test_envoy_sends_the_original_method_and_path(
    stack: Stack, degraded_token: str, method: str, status: int
) -> None:
    response = await stack.gateway.request(
        method,
        "/v1/envoy/reports/42" + auth_path(degraded_token).removeprefix("/v1/auth"),
        headers={"Authorization": f"Bearer {degraded_token}"},
    )
    assert response.status == status


@pytest.fixture
def gateway_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.node.get_closest_marker("untrusted_proxy"):
        return {"TOLLGATE_TRUSTED_PROXIES": "10.255.255.0/24"}
    if request.node.get_closest_marker("any_tenant"):
        return {"TOLLGATE_PROXY_ANY_TENANT": "true"}
    return {}


@pytest.mark.untrusted_proxy
async def test_method_headers_from_untrusted_peers_are_ignored(
    stack: Stack, degraded_token: str
) -> None:
    # The test client is not a trusted proxy: its claim of a GET changes nothing, and the
    # subrequest's own method (GET) is what counts.
    response = await stack.gateway.get(
        auth_path(degraded_token),
        headers={"Authorization": f"Bearer {degraded_token}", "X-Original-Method": "POST"},
    )
    assert response.status == 200


async def test_an_unbound_check_is_refused_unless_the_gateway_opts_in(
    stack: Stack, degraded_token: str
) -> None:
    headers = {"Authorization": f"Bearer {degraded_token}"}
    unbound = await stack.gateway.get("/v1/auth", headers=headers)
    assert (unbound.status, unbound.headers["X-Tollgate-Reason"]) == (403, "tenant_required")
    envoy = await stack.gateway.get("/v1/envoy/reports", headers=headers)
    assert (envoy.status, envoy.headers["X-Tollgate-Reason"]) == (403, "tenant_required")
    elsewhere = await stack.gateway.get("/v1/auth?tenant=ten_other", headers=headers)
    assert elsewhere.status == 401  # another tenant's session is no session to this proxy


@pytest.mark.any_tenant
async def test_a_multi_tenant_proxy_opts_in_and_reads_the_tenant(
    stack: Stack, degraded_token: str
) -> None:
    unbound = await stack.gateway.get(
        "/v1/auth", headers={"Authorization": f"Bearer {degraded_token}"}
    )
    assert unbound.status == 200
    assert degraded_token.startswith(f"tgs_{unbound.headers['X-Tollgate-Tenant']}.")
