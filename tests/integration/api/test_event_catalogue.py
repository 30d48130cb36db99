"""One customer's life makes every lifecycle event type, and docs/events.md shows each as
it is sent: the same object and the same changed fields as its example."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.domain.events import CATALOGUE
from billing_worker.invoicing.usage import UsageFolder
from billing_worker.runtime.parking import park_account
from shared.clock import SystemClock
from tests.integration.conftest import Stack, Tenant
from tests.integration.gateway.test_sessions import login, wait_published

DOCS = Path(__file__).resolve().parents[3] / "docs" / "events.md"


def documented_examples() -> dict[str, dict[str, Any]]:
    """Each ```json block of docs/events.md that is an event, by its type."""
    blocks = re.findall(r"```json\n(.*?)```", DOCS.read_text(), re.DOTALL)
    events = [orjson.loads(block) for block in blocks]
    return {e["type"]: e for e in events if isinstance(e, dict) and e.get("type") in CATALOGUE}


async def _call(stack: Stack, tenant: Tenant, method: str, path: str, body: Any = None) -> Any:
    response = await stack.api.request(method, path, json=body, headers=tenant.admin)
    assert response.status < 300, (path, response.status, await response.text())
    return await response.json()


async def _move_clock(stack: Stack, body: dict[str, Any]) -> None:
    """Only the operator key moves the shared test clock."""
    response = await stack.api.post("/v1/test/clock", json=body, headers=stack.operator)
    assert response.status == 200, await response.text()


async def _catalog(stack: Stack, tenant: Tenant) -> None:
    """A per-seat plan with a 14-day trial."""
    today = (await _call(stack, tenant, "GET", "/v1/test/clock"))["now"][:10]
    catalog = {
        "effective_date": today, "currencies": ["USD"], "products": {"pro": {"category": "base"}},
        "plans": {"pro-monthly": {
            "product": "pro", "billing_period": "monthly", "per_seat": True,
            "entitlement": {"features": ["x"]},
            "phases": [{"type": "trial", "duration": {"unit": "days", "number": 14}},
                       {"type": "evergreen", "recurring": {"USD": "31.00"}}]}},
    }  # fmt: skip
    uploaded = await stack.api.put("/v1/catalog", json=catalog, headers=tenant.admin)
    assert uploaded.status in (200, 201), await uploaded.text()


async def _life(stack: Stack, tenant: Tenant) -> str:
    """A trial that becomes paid; changes, a pause, a cancellation withdrawn; a declined and
    a good card; a refund, a voided and a written-off charge; the end. Returns the account."""
    account = (await _call(stack, tenant, "POST", "/v1/accounts", {"name": "Initech"}))["id"]
    await _call(stack, tenant, "PATCH", f"/v1/accounts/{account}", {"name": "Initech Inc"})
    await _call(stack, tenant, "POST", f"/v1/accounts/{account}/users", {"external_id": "amy"})
    await _call(stack, tenant, "POST", f"/v1/accounts/{account}/payment-methods",
                {"token": "tok_sandbox_stolen"})  # fmt: skip
    sub = (await _call(stack, tenant, "POST", f"/v1/accounts/{account}/subscriptions",
                       {"plan": "pro-monthly"}))["subscription"]["id"]  # fmt: skip
    base = f"/v1/subscriptions/{sub}"
    await _call(stack, tenant, "POST", f"{base}/quantity", {"quantity": 2})
    await _call(stack, tenant, "POST", f"{base}/pause", {})
    await _call(stack, tenant, "POST", f"{base}/resume", {})
    await _call(stack, tenant, "POST", f"{base}/cancel", {"entitlement_policy": "end_of_term"})
    await _call(stack, tenant, "POST", f"{base}/uncancel", {})

    await _move_clock(stack, {"advance_days": 14})  # paid now

    async def declined() -> bool:
        found = await _call(stack, tenant, "GET", f"/v1/accounts/{account}/payment-attempts")
        return bool(found["data"]) and found["data"][0]["status"] == "declined"

    await stack.eventually(declined, within=15)
    await _call(stack, tenant, "POST", f"/v1/accounts/{account}/payment-methods",
                {"token": "tok_sandbox_success"})  # fmt: skip

    async def paid() -> bool:
        found = await _call(stack, tenant, "GET", f"/v1/accounts/{account}")
        return bool(found["balance_due"] == "0.00")

    await stack.eventually(paid, within=15)
    [payment] = (await _call(stack, tenant, "GET", f"/v1/accounts/{account}/payments"))["data"]
    await _call(stack, tenant, "POST", f"/v1/payments/{payment['id']}/refunds",
                {"amount": "5.00", "reason": "goodwill"})  # fmt: skip
    await _call(stack, tenant, "PATCH", f"/v1/accounts/{account}", {"collection": "manual"})
    for then in ("void", "write-off"):
        charge = {"amount": "12.00", "currency": "USD", "description": "Setup"}
        invoice = await _call(stack, tenant, "POST", f"/v1/accounts/{account}/charges", charge)
        await _call(stack, tenant, "POST", f"/v1/invoices/{invoice['id']}/{then}", {})
    await _call(stack, tenant, "POST", f"{base}/cancel",
                {"entitlement_policy": "immediate", "billing_policy": "immediate"})  # fmt: skip
    return str(account)


async def _fold_a_login(
    stack: Stack, tenant: Tenant, redis_client: aioredis.Redis, database_url: str
) -> None:
    account = (await _call(stack, tenant, "POST", "/v1/accounts", {"name": "Hooli"}))["id"]
    await _call(stack, tenant, "POST", f"/v1/accounts/{account}/users", {"external_id": "gus"})
    await _call(stack, tenant, "POST", f"/v1/accounts/{account}/subscriptions",
                {"plan": "pro-monthly"})  # fmt: skip
    await wait_published(stack, tenant, "gus")
    assert (await login(stack, tenant, "gus")).status == 201
    await asyncio.sleep(1.5)  # the gateway's write-back flushes about once a second
    engine = create_engine(database_url)
    try:
        await UsageFolder(session_factory(engine), redis_client, SystemClock()).fold_recent()
    finally:
        await engine.dispose()


async def _park_and_release(stack: Stack, tenant: Tenant, account: str, database_url: str) -> None:
    """The worker parks the account (as when processing it fails); the tenant releases it."""
    engine = create_engine(database_url)
    try:
        problem = RuntimeError("the catalog has no plan 'pro-2019'")
        await park_account(
            session_factory(engine), account, "scheduler", problem, datetime.now(UTC)
        )
    finally:
        await engine.dispose()
    await _call(stack, tenant, "POST", f"/v1/accounts/{account}/release", {})


async def test_every_event_type_is_sent_as_docs_events_md_shows_it(
    stack: Stack, redis_client: aioredis.Redis, database_url: str
) -> None:
    tenant = await stack.new_tenant()
    await _catalog(stack, tenant)
    await _fold_a_login(stack, tenant, redis_client, database_url)  # before the clock moves
    account = await _life(stack, tenant)
    await _park_and_release(stack, tenant, account, database_url)
    every: list[dict[str, Any]] = []
    path: str | None = "/v1/events?limit=100"
    while path is not None:
        page = await _call(stack, tenant, "GET", path)
        every += page["data"]
        path = f"/v1/events?limit=100&after={page['next']}" if page["next"] else None
    sent: dict[str, dict[str, Any]] = {}
    for event in reversed(every):  # the first of each type
        sent.setdefault(event["type"], event)
    assert set(sent) == set(CATALOGUE), "types never sent: " + str(set(CATALOGUE) - set(sent))

    examples = documented_examples()
    assert set(examples) == set(CATALOGUE), "types without an example in docs/events.md"
    for kind, event in sent.items():
        example = examples[kind]
        assert set(example) == set(event), kind
        assert example["data"]["object"] == event["data"]["object"], kind
        assert set(example["data"]["changes"]) == set(event["data"]["changes"]), (
            kind, sorted(event["data"]["changes"]),
        )  # fmt: skip
