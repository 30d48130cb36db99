"""Every tenant route probed by another tenant: what belongs to tenant A answers tenant B
exactly as a resource that never existed does, and no listing of B shows any of A.

The routes come from the API's own route table, so a route added later is probed too.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role
from billing_worker.db.engine import create_engine, session_factory
from billing_worker.db.models import PaymentEvent
from tests.integration.conftest import Stack, Tenant

SECRET_NAME = "Secret Corp of tenant A"
POLICY = {"stages": [{"standing": "suspended", "days_past_due": 10}]}


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


async def _json(response: Any) -> Any:
    text = await response.text()
    return json.loads(text) if text else None


async def _owned_by_a(
    stack: Stack, a: Tenant, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, str]:
    """One of everything tenant A can own, by the route parameter that names it."""
    account = await stack.customer(a, "alice")
    await stack.api.patch(f"/v1/accounts/{account}", json={"name": SECRET_NAME},
                          headers=a.admin)  # fmt: skip
    paid = await stack.post(f"/v1/accounts/{account}/payments", a,
                            {"amount": "49.00", "currency": "USD"})  # fmt: skip
    method = await stack.post(f"/v1/accounts/{account}/payment-methods", a,
                              {"token": "tok_sandbox_success"})  # fmt: skip
    [subscription] = (
        await _json(await stack.api.get(f"/v1/accounts/{account}/subscriptions", headers=a.admin))
    )["data"]
    [invoice] = (
        await _json(await stack.api.get(f"/v1/accounts/{account}/invoices", headers=a.admin))
    )["data"]
    [user] = (await _json(await stack.api.get(f"/v1/accounts/{account}/users", headers=a.admin)))[
        "data"
    ]
    run = await _json(await stack.api.post("/v1/invoice-runs", json={}, headers=a.admin))
    key = await stack.post("/v1/tenant/keys", a, {"kind": "gateway"})
    policy = await stack.api.put("/v1/tenant/dunning-policies/a-only", json=POLICY,
                                 headers=a.admin)  # fmt: skip
    assert policy.status in (200, 201), await policy.text()
    endpoint = await stack.post("/v1/webhook-endpoints", a, {"url": "https://a.example/hook"})
    lifecycle = (await _json(await stack.api.get("/v1/events?limit=1", headers=a.admin)))["data"]
    await stack.wait_allowed(a, "alice")
    signed_in = await stack.gateway.post("/v1/sessions", json={"user": "alice"},
                                         headers=a.gateway)  # fmt: skip
    assert signed_in.status == 201, await signed_in.text()
    async with sessions() as session:
        event = await session.scalar(
            select(func.max(PaymentEvent.id)).where(PaymentEvent.tenant_id == a.id)
        )
    return {
        "account_id": account,
        "subscription_id": subscription["id"],
        "invoice_id": invoice["id"],
        "item_id": invoice["items"][0]["id"],
        "payment_id": paid["id"],
        "method_id": method["id"],
        "user_id": user["id"],
        "run_id": run["id"],
        "key_id": key["id"],
        "name": "a-only",
        "event_id": str(event),
        "endpoint_id": endpoint["id"],
        "lifecycle_event_id": lifecycle[0]["id"],
        "session_id": (await signed_in.json())["session_id"],
    }


def _never_existed(value: str) -> str:
    """An id of the same shape that names nothing."""
    if value.isdigit():
        return str(10**9 + int(value))
    prefix, _, rest = value.rpartition("_")
    return f"{prefix}_{'0' * len(rest)}" if prefix else "b-only"


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


async def test_another_tenant_cannot_tell_a_tenants_resources_from_none(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, b = await stack.new_tenant("A"), await stack.new_tenant("B")
    await stack.customer(b, "bob")  # B has data of its own, and a catalog
    owned = await _owned_by_a(stack, a, sessions)
    fake = {k: _never_existed(v) for k, v in owned.items()}
    probed = []
    for spec in router.specs:
        if spec.role is not Role.TENANT or "{" not in spec.path:
            continue
        params = re.findall(r"\{(\w+)\}", spec.path)
        assert set(params) <= set(owned), f"a new route parameter to probe: {spec.path}"
        answers = []
        for values in (owned, fake):
            response = await stack.api.request(
                spec.method, _fill(spec.path, values), json={}, headers=b.admin
            )
            text = await response.text()
            for name, value in values.items():
                text = re.sub(rf"(?<![\w-]){re.escape(value)}(?![\w-])", f"<{name}>", text)
            answers.append((response.status, text))
        mine, nothing = answers
        assert mine == nothing, f"{spec.method} {spec.path}: A's answer {mine} != {nothing}"
        assert not 200 <= mine[0] < 300, f"{spec.method} {spec.path} let B act: {mine}"
        assert SECRET_NAME not in mine[1]
        probed.append(f"{spec.method} {spec.path}")
    assert len(probed) >= 45, probed

    # A's resources are all still there, unchanged by B's attempts.
    account = await _json(await stack.api.get(f"/v1/accounts/{owned['account_id']}",
                                              headers=a.admin))  # fmt: skip
    assert account["name"] == SECRET_NAME
    keys = await _json(await stack.api.get("/v1/tenant/keys", headers=a.admin))
    assert any(k["id"] == owned["key_id"] and k["revoked_at"] is None for k in keys["data"])
    live = await _json(
        await stack.api.get(f"/v1/accounts/{owned['account_id']}/sessions", headers=a.admin)
    )
    assert [s["id"] for s in live["data"]] == [owned["session_id"]]  # B could not end it

    # B's own listings show none of A.
    for path in ("/v1/accounts", "/v1/invoices", "/v1/payments", "/v1/messages", "/v1/parked",
                 "/v1/invoice-runs", "/v1/tenant/keys", "/v1/tenant/dunning-policies",
                 "/v1/plans", "/v1/catalog", "/v1/tenant", "/v1/webhook-endpoints",
                 "/v1/events", "/v1/audit",
                 f"/v1/invoices?account_id={owned['account_id']}",
                 f"/v1/payments?account_id={owned['account_id']}"):  # fmt: skip
        response = await stack.api.get(path, headers=b.admin)
        assert response.status == 200, (path, await response.text())
        text = await response.text()
        leaked = [k for k, v in owned.items() if k not in ("name", "event_id") and v in text]
        assert not leaked, f"GET {path} shows A's {leaked}"
        assert SECRET_NAME not in text
