"""An in-process stack: the management API (with its jobs) and a gateway, over real HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from billing_worker.settings import WorkerSettings
from billing_worker.worker import create_app as create_worker_app
from gateway.app import create_app as create_gateway_app
from gateway.server import GatewayRunner
from gateway.settings import GatewaySettings

OPERATOR_KEY = "tgop_test_operator_key"
#: Seals the tenants' webhook secrets in the test databases (a Fernet key).
SECRETS_KEY = "Gl8b3n0s5f4wGEx7W6TbJ5Qx7l0v1y2Zq3r4s5t6u7A="
#: The gateway's staleness bound in these tests (short, to keep the suite quick).
NEAR_CACHE_TTL = 1.0


class ApiTestServer(TestServer):
    """Serves the worker's API as `python -m billing_worker` does: a client that goes away
    does not cancel its request's handler (aiohttp's test server would, unlike its runner's
    default), so a browser leaving a page mid-request cannot cut a transaction short."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        return web.AppRunner(self.app, **{**kwargs, "handler_cancellation": False})


class GatewayTestServer(TestServer):
    """Serves the gateway as `python -m gateway` does: decision endpoints below the router,
    handlers not cancelled when a client goes away."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        return GatewayRunner(self.app, **{**kwargs, "handler_cancellation": False})


@dataclass
class Tenant:
    id: str
    admin: dict[str, str]
    gateway: dict[str, str]
    #: Shown once, in the creation answer.
    webhook_secret: str = ""
    provider_webhook_secret: str = ""


@dataclass
class Stack:
    api: TestClient[Any, Any]
    gateway: TestClient[Any, Any]
    operator: dict[str, str]

    async def new_tenant(self, name: str = "Acme SaaS", **extra: Any) -> Tenant:
        response = await self.api.post(
            "/v1/tenants", json={"name": name, **extra}, headers=self.operator
        )
        assert response.status == 201, await response.text()
        body = await response.json()
        return Tenant(
            id=body["id"],
            admin={"Authorization": f"Bearer {body['admin_key']}"},
            gateway={"Authorization": f"Bearer {body['gateway_key']}"},
            webhook_secret=body["webhook_secret"],
            provider_webhook_secret=body["provider_webhook_secret"],
        )

    async def post(self, path: str, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.api.post(path, json=body, headers=tenant.admin)
        assert response.status == 201, await response.text()
        result: dict[str, Any] = await response.json()
        return result

    async def customer(
        self, tenant: Tenant, user: str, *, price: str = "49.00", start_at: str | None = None
    ) -> str:
        """A plan (once), an account with one user and a subscription; returns the account id."""
        plans = await self.api.post(
            "/v1/plans",
            json={"code": "pro", "name": "Pro", "currency": "USD", "amount": price,
                  "features": ["reports"]},
            headers=tenant.admin,
        )  # fmt: skip
        assert plans.status in (201, 409)
        account = await self.post("/v1/accounts", tenant, {"name": f"Account of {user}"})
        await self.post(f"/v1/accounts/{account['id']}/users", tenant, {"external_id": user})
        subscription: dict[str, Any] = {"plan": "pro"}
        if start_at:
            subscription["start_at"] = start_at
        await self.post(f"/v1/accounts/{account['id']}/subscriptions", tenant, subscription)
        return str(account["id"])

    async def authorize(self, tenant: Tenant, user: str) -> dict[str, Any]:
        response = await self.gateway.post(
            "/v1/authorize", json={"user": user}, headers=tenant.gateway
        )
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
        return result

    async def wait_allowed(self, tenant: Tenant, user: str, within: float = 5.0) -> float:
        """Until the tenant's key, the user and an allowing record have reached the gateway."""

        async def ready() -> bool:
            response = await self.gateway.post(
                "/v1/authorize", json={"user": user}, headers=tenant.gateway
            )
            return response.status == 200 and bool((await response.json())["allow"])

        return await self.eventually(ready, within)

    async def wait_key(self, tenant: Tenant) -> float:
        """Until the tenant's gateway key has reached the gateway."""

        async def published() -> bool:
            response = await self.gateway.post(
                "/v1/authorize", json={"user": "-"}, headers=tenant.gateway
            )
            return response.status == 200

        return await self.eventually(published)

    async def eventually(self, check: Callable[[], Awaitable[bool]], within: float = 5.0) -> float:
        """Poll ``check`` until true; returns the seconds it took."""
        start = time.monotonic()
        while not await check():
            if time.monotonic() - start > within:
                raise AssertionError(f"condition not met within {within}s")
            await asyncio.sleep(0.01)
        return time.monotonic() - start


@pytest.fixture
def gateway_env() -> dict[str, str]:
    """Extra gateway settings; a test overrides this fixture to change them."""
    return {}


@pytest.fixture
def worker_env() -> dict[str, str]:
    """Extra worker settings; a test overrides this fixture to change them."""
    return {}


@pytest.fixture
def stack_redis_url(redis_url: str) -> str:
    """The Redis the stack uses; a test overrides this to use a Redis it can stop."""
    return redis_url


@pytest.fixture
async def stack(
    database_url: str,
    stack_redis_url: str,
    gateway_env: dict[str, str],
    worker_env: dict[str, str],
) -> AsyncIterator[Stack]:
    redis_url = stack_redis_url
    worker_settings = WorkerSettings.from_env(
        {
            "TOLLGATE_DATABASE_URL": database_url,
            "TOLLGATE_REDIS_URL": redis_url,
            "TOLLGATE_OPERATOR_KEY": OPERATOR_KEY,
            "TOLLGATE_TEST_MODE": "true",
            "TOLLGATE_SCHEDULER_INTERVAL": "0.2",
            "TOLLGATE_SECRETS_KEY": SECRETS_KEY,
            **worker_env,
        }
    )
    gateway_settings = GatewaySettings.from_env(
        {
            "TOLLGATE_REDIS_URL": redis_url,
            "TOLLGATE_TEST_MODE": "true",
            "TOLLGATE_NEAR_CACHE_TTL": str(NEAR_CACHE_TTL),
            **gateway_env,
        }
    )
    api = TestClient(ApiTestServer(create_worker_app(worker_settings)))
    gateway = TestClient(GatewayTestServer(create_gateway_app(gateway_settings)))
    await api.start_server()
    await gateway.start_server()
    stack = Stack(api=api, gateway=gateway, operator={"Authorization": f"Bearer {OPERATOR_KEY}"})

    async def ready() -> bool:  # the worker has built the view (an empty one, at first)
        return (await gateway.get("/readyz")).status == 200

    try:
        await stack.eventually(ready, within=10)
        yield stack
    finally:
        await gateway.close()
        await api.close()
