"""The decision endpoints answer the same below the router as through it.

The gateway serves ``/v1/authorize``, ``/v1/auth`` and the Envoy prefix directly from its
low-level server handler (gateway.server) and everything else through the application's
router. The same application served with a plain ``AppRunner`` (router only) must give
byte-for-byte the same answers -- status, the headers a caller reads and the body -- for
allows, denials, bad keys, bad bodies, missing sessions and the paths next to the direct
ones (a wrong method, a trailing slash, a percent-encoded path).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.integration.conftest import NEAR_CACHE_TTL, Stack
from tests.integration.gateway.test_sessions import login, wait_published

#: The headers a caller or a proxy reads; Date and Server differ by the second.
COMPARED = ("Content-Type", "Allow", "WWW-Authenticate", "Cache-Control", "Retry-After")


@pytest.fixture
async def routed(stack_redis_url: str) -> AsyncIterator[TestClient[Any, Any]]:
    """The same gateway, served by aiohttp's router alone."""
    settings = GatewaySettings.from_env(
        {
            "TOLLGATE_REDIS_URL": stack_redis_url,
            "TOLLGATE_TEST_MODE": "true",
            "TOLLGATE_NEAR_CACHE_TTL": str(NEAR_CACHE_TTL),
        }
    )
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    yield client
    await client.close()


async def _answer(client: TestClient[Any, Any], request: dict[str, Any]) -> tuple[Any, ...]:
    response = await client.request(**request)
    headers = {name: response.headers.get(name) for name in COMPARED}
    tollgate = {k: v for k, v in response.headers.items() if k.startswith("X-Tollgate")}
    return response.status, headers, tollgate, await response.read()


async def test_direct_and_routed_answers_are_identical(
    stack: Stack, routed: TestClient[Any, Any]
) -> None:
    tenant = await stack.new_tenant()
    await stack.customer(tenant, "alice")
    await wait_published(stack, tenant, "alice")
    token = str((await (await login(stack, tenant, "alice")).json())["token"])
    session = {"Authorization": f"Bearer {token}"}
    key = tenant.gateway
    bound = {**session, "X-Tollgate-Key": key["Authorization"].removeprefix("Bearer ")}
    requests: list[dict[str, Any]] = [
        {"method": "POST", "path": "/v1/authorize", "json": {"user": "alice"}, "headers": key},
        {"method": "POST", "path": "/v1/authorize", "json": {"user": "nobody"}, "headers": key},
        {"method": "POST", "path": "/v1/authorize", "json": {"user": "alice", "feature": "x"},
         "headers": key},
        {"method": "POST", "path": "/v1/authorize", "json": {"user": "alice"},
         "headers": {"Authorization": "Bearer tgk_nope.nope"}},
        {"method": "POST", "path": "/v1/authorize", "json": {"user": 7}, "headers": key},
        {"method": "POST", "path": "/v1/authorize", "data": b"{not json", "headers": key},
        {"method": "POST", "path": "/v1/authorize", "json": {"user": "alice"},
         "headers": {**key, "Expect": "100-continue"}},
        {"method": "GET", "path": "/v1/authorize", "headers": key},
        {"method": "POST", "path": "/v1/authorize/", "json": {"user": "alice"}, "headers": key},
        {"method": "POST", "path": "/v1/%61uthorize", "json": {"user": "alice"}, "headers": key},
        {"method": "GET", "path": "/v1/auth", "headers": bound},
        {"method": "HEAD", "path": "/v1/auth", "headers": bound},
        {"method": "GET", "path": "/v1/auth", "headers": {**bound, "X-Original-Method": "POST"}},
        {"method": "GET", "path": f"/v1/auth?tenant={tenant.id}", "headers": session},
        {"method": "GET", "path": "/v1/auth?tenant=elsewhere", "headers": session},
        {"method": "GET", "path": "/v1/auth", "headers": session},  # bound to no tenant
        {"method": "GET", "path": "/v1/auth", "headers": {**bound, "X-Tollgate-Key": "tgk_x.y"}},
        {"method": "GET", "path": "/v1/auth", "headers": {"Cookie": "tollgate_session=x.y"}},
        {"method": "POST", "path": "/v1/auth", "headers": bound},
        {"method": "DELETE", "path": "/v1/envoy/reports/42", "headers": bound},
        {"method": "GET", "path": "/v1/envoy", "headers": bound},
        {"method": "GET", "path": "/v1/envoyx", "headers": bound},
        {"method": "GET", "path": "/healthz"},
    ]  # fmt: skip
    for request in requests:
        direct = await _answer(stack.gateway, request)
        assert direct == await _answer(routed, request), request
    # and the direct answers are the ones the contract asks for
    allowed = await _answer(stack.gateway, requests[0])
    assert allowed[0] == 200
    assert b'"allow":true' in allowed[3]
    assert (await _answer(stack.gateway, requests[10]))[2]["X-Tollgate-User"] == "alice"
    assert (await _answer(stack.gateway, requests[13]))[0] == 200  # ?tenant= binds too
    assert (await _answer(stack.gateway, requests[14]))[0] == 401  # another tenant's
    unbound = await _answer(stack.gateway, requests[15])
    assert (unbound[0], unbound[2]["X-Tollgate-Reason"]) == (403, "tenant_required")
    assert (await _answer(stack.gateway, requests[16]))[0] == 401  # a key of no tenant
