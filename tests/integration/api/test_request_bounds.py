"""Hostile or careless input gets a clear 422 (every bad field named) instead of work the
worker cannot finish: dates within a window, no control characters, resolvable webhook
hosts, YAML without aliases; and what still gets through is caught where it leaves."""

from __future__ import annotations

import ipaddress
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from sqlalchemy import update

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.db.models import Account
from billing_worker.db.models import Tenant as TenantRow
from tests.integration.conftest import Stack
from tests.integration.dunning.test_advisory_messages import Mailbox, smtp  # noqa: F401 (fixture)
from tests.integration.dunning.test_payment_queue import CATALOG, _get
from tollgate.redis_server import free_port


@pytest.fixture
def worker_env(smtp: tuple[Mailbox, int]) -> dict[str, str]:  # noqa: F811
    """Email on, and webhooks to public addresses only (the default)."""
    return {"TOLLGATE_SMTP_URL": f"smtp://127.0.0.1:{smtp[1]}"}


async def _problem(response: ClientResponse, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = await response.json()
    return body


def _fields(problem: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in problem["errors"]}


async def test_dates_outside_the_window_are_refused_each_by_name(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    account = await stack.customer(tenant, "ann")
    today = datetime.now(UTC).date()

    response = await stack.api.post(
        f"/v1/accounts/{account}/subscriptions",
        json={"plan": "pro", "entitlement_start": "1900-01-01", "billing_start": "9999-01-01"},
        headers=tenant.admin,
    )
    fields = _fields(await _problem(response, 422))
    assert set(fields) == {"entitlement_start", "billing_start"}
    assert "3650 days before today" in fields["entitlement_start"]
    assert "TOLLGATE_MAX_BACKDATE_DAYS" in fields["entitlement_start"]
    assert "3650 days after today" in fields["billing_start"]

    for path in ("/v1/invoice-runs", f"/v1/accounts/{account}/invoices"):
        for target in ("9999-12-31", "9872-12-24", (today + timedelta(days=731)).isoformat()):
            response = await stack.api.post(
                path, json={"target_date": target}, headers=tenant.admin
            )
            fields = _fields(await _problem(response, 422))
            assert "730 days after today" in fields["target_date"], (path, target)

    # Within the window it is accepted: ten years back, and a target two years ahead.
    back = (today - timedelta(days=3650)).isoformat()
    other = await stack.post("/v1/accounts", tenant, {"name": "Back-dated"})
    response = await stack.api.post(
        f"/v1/accounts/{other['id']}/invoices",
        json={"target_date": (today + timedelta(days=730)).isoformat(), "dry_run": True},
        headers=tenant.admin,
    )
    assert response.status in (200, 201), await response.text()
    response = await stack.api.post(
        f"/v1/accounts/{other['id']}/subscriptions",
        json={"plan": "pro", "start_date": back},
        headers=tenant.admin,
    )
    assert response.status == 201, await response.text()


async def test_control_characters_are_refused_the_same_on_every_database(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    for name in ("a\u0000b", "Evil\r\nBcc: x@y", "tab\there"):
        response = await stack.api.post("/v1/accounts", json={"name": name}, headers=tenant.admin)
        fields = _fields(await _problem(response, 422))
        assert "control character" in fields["name"]
    response = await stack.api.patch(
        "/v1/tenant", json={"name": "x\u001b[31m", "notify_emails": ["a@b.c\n"]},
        headers=tenant.admin,
    )  # fmt: skip
    assert set(_fields(await _problem(response, 422))) == {"name", "notify_emails[0]"}


async def test_a_webhook_host_no_resolver_accepts_is_refused(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    for url in (f"http://{'a' * 64}.test/x", "http://a..b/x", f"https://{'a.' * 130}test/"):
        response = await stack.api.patch(
            "/v1/tenant", json={"notify_webhook_url": url}, headers=tenant.admin
        )
        fields = _fields(await _problem(response, 422))
        assert "host name" in fields["notify_webhook_url"], url
    fine = await stack.api.patch(
        "/v1/tenant", json={"notify_webhook_url": "https://hooks.example.com/t"},
        headers=tenant.admin,
    )  # fmt: skip
    assert fine.status == 200


async def test_pattern_errors_read_as_words(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    response = await stack.api.post(
        "/v1/accounts",
        json={"name": "x", "currency": "usd", "email": "not-an-address"},
        headers=tenant.admin,
    )
    problem = await _problem(response, 422)
    assert "regex" not in problem["detail"]
    assert _fields(problem) == {  # both, at once
        "currency": "must be a three-letter ISO 4217 code such as USD",
        "email": "must be an email address such as ann@example.com",
    }


async def test_a_yaml_catalog_with_aliases_is_refused_at_once(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join(['*' + chr(97 + n)] * 9)}]\n" for n in range(8)
    )
    response = await stack.api.put(
        "/v1/catalog", data=bomb, headers={**tenant.admin, "Content-Type": "application/yaml"}
    )
    problem = await _problem(response, 400)
    assert problem["title"] == "The request body is neither valid YAML nor JSON."
    assert "aliases" in problem["detail"]


async def test_a_message_that_cannot_be_built_or_addressed_fails_its_delivery_only(
    stack: Stack, database_url: str
) -> None:
    """A name holding CR/LF and a host no resolver accepts, written behind the API's back:
    each delivery records its error and is retried later; the worker carries on."""
    tenant = await stack.new_tenant(
        notify_webhook_url="https://hooks.example.com/t", notify_emails=["ops@vendor.test"]
    )
    assert (await stack.api.put("/v1/catalog", json=CATALOG, headers=tenant.admin)).status in (
        200,
        201,
    )
    account = await stack.post("/v1/accounts", tenant, {"name": "Evil"})
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            await session.execute(
                update(Account).where(Account.id == account["id"]).values(name="Evil\r\nBcc: x@y")
            )
            await session.execute(
                update(TenantRow)
                .where(TenantRow.id == tenant.id)
                .values(notify_webhook_url=f"http://{'a' * 64}.test/x")
            )
    finally:
        await engine.dispose()
    path = f"/v1/accounts/{account['id']}"
    await stack.post(path + "/payment-methods", tenant, {"token": "tok_sandbox_insufficient_funds"})
    await stack.post(path + "/subscriptions", tenant, {"plan": "pro-monthly"})

    async def every_delivery_tried() -> bool:
        messages = (await _get(stack, tenant, "/v1/messages"))["data"]
        deliveries = [d for m in messages for d in m["deliveries"]]
        return bool(deliveries) and all(d["attempts"] >= 1 for d in deliveries)

    await stack.eventually(every_delivery_tried, within=10)
    messages = (await _get(stack, tenant, "/v1/messages"))["data"]
    errors = {d["channel"]: d["last_error"] for m in messages for d in m["deliveries"]}
    assert "label" in errors["webhook"].lower() or "idna" in errors["webhook"].lower()
    assert "linefeed" in errors["email"] or "carriage return" in errors["email"]
    assert {d["status"] for m in messages for d in m["deliveries"]} == {"pending"}
    # The worker is still up and serving.
    assert (await stack.api.get("/v1/tenant", headers=tenant.admin)).status == 200


async def test_webhooks_to_private_addresses_are_refused_where_entered(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    for url in ("http://127.0.0.1:9/x", "http://[::1]/x", "http://10.1.2.3/x",
                "http://169.254.169.254/latest/meta-data", "http://localhost:8080/x"):  # fmt: skip
        response = await stack.api.patch(
            "/v1/tenant", json={"notify_webhook_url": url}, headers=tenant.admin
        )
        fields = _fields(await _problem(response, 422))
        assert "not a public address" in fields["notify_webhook_url"], url
        assert "TOLLGATE_WEBHOOK_ALLOWED_NETWORKS" in fields["notify_webhook_url"]


async def test_a_name_that_resolves_to_this_machine_is_refused_when_sent_to(
    stack: Stack, database_url: str
) -> None:
    """Checked on the address connected to: a tenant cannot probe the worker's network by
    a name that resolves (or re-resolves) to a private address."""
    name = socket.gethostname()
    resolved = {info[4][0] for info in socket.getaddrinfo(name, 80)}
    if any(ipaddress.ip_address(a).is_global for a in resolved):
        pytest.skip(f"{name} resolves to a public address here")
    hits: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(await request.read())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/x", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    try:
        tenant = await stack.new_tenant(notify_webhook_url="https://hooks.example.com/t")
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as session, session.begin():
                await session.execute(
                    update(TenantRow)
                    .where(TenantRow.id == tenant.id)
                    .values(notify_webhook_url=f"http://{name}:{port}/x")
                )
        finally:
            await engine.dispose()
        catalog = await stack.api.put("/v1/catalog", json=CATALOG, headers=tenant.admin)
        assert catalog.status in (200, 201)
        account = await stack.post("/v1/accounts", tenant, {"name": "Probe"})
        path = f"/v1/accounts/{account['id']}"
        await stack.post(path + "/payment-methods", tenant, {"token": "tok_sandbox_stolen"})
        await stack.post(path + "/subscriptions", tenant, {"plan": "pro-monthly"})

        async def tried() -> bool:
            messages = (await _get(stack, tenant, "/v1/messages"))["data"]
            return any(d["attempts"] for m in messages for d in m["deliveries"])

        await stack.eventually(tried, within=10)
        messages = (await _get(stack, tenant, "/v1/messages"))["data"]
        errors = {d["last_error"] for m in messages for d in m["deliveries"] if d["attempts"]}
        assert all("no public address" in (e or "") for e in errors), errors
        assert hits == []
    finally:
        await runner.cleanup()


async def test_an_enumerated_field_says_which_values_it_takes(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    response = await stack.api.post(
        "/v1/accounts", json={"name": "x", "kind": "business"}, headers=tenant.admin
    )
    fields = _fields(await _problem(response, 422))
    assert fields["kind"].endswith("one of 'consumer', 'enterprise', 'reseller'")


async def test_a_catalog_with_unreadable_text_is_refused_by_path(stack: Stack) -> None:
    """Found by schemathesis: a key holding a lone surrogate made the error itself a 500."""
    tenant = await stack.new_tenant()
    response = await stack.api.put(
        "/v1/catalog", data=b'{"plans": {"pro\\ud80c": {}}, "x\\u0007": 1}',
        headers={**tenant.admin, "Content-Type": "application/json"},
    )  # fmt: skip
    fields = _fields(await _problem(response, 422))
    assert set(fields) == {"catalog.plans.pro\ud80c", "catalog.x\x07"} or len(fields) == 2
    assert all("unpaired surrogates" in reason for reason in fields.values())
