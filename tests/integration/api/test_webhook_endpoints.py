"""Lifecycle webhooks: a tenant's endpoints receive the events they subscribed to, signed
with their own secret, in the order the account's changes were committed; the events can be
listed and replayed, each endpoint's deliveries are logged, and a secret can be rotated."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

from billing_worker.notifications.signing import HEADER, verify
from tests.integration.conftest import Stack, Tenant
from tollgate.redis_server import free_port


@pytest.fixture
def worker_env() -> dict[str, str]:
    return {"TOLLGATE_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}


@dataclass
class Receiver:
    url: str
    received: dict[str, list[tuple[bytes, str | None]]] = field(default_factory=dict)
    fail_next: int = 0

    def events(self, path: str) -> list[dict[str, Any]]:
        return [orjson.loads(body) for body, _ in self.received.get(path, [])]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    hook = Receiver(url=f"http://127.0.0.1:{port}")

    async def handle(request: web.Request) -> web.Response:
        if hook.fail_next:
            hook.fail_next -= 1
            return web.Response(status=503)
        hook.received.setdefault(request.path, []).append(
            (await request.read(), request.headers.get(HEADER))
        )
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{name}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield hook
    finally:
        await runner.cleanup()


async def _call(stack: Stack, tenant: Tenant, method: str, path: str, body: Any = None) -> Any:
    response = await stack.api.request(method, path, json=body, headers=tenant.admin)
    assert response.status < 300, (path, response.status, await response.text())
    return await response.json()


async def _move_clock(stack: Stack, body: dict[str, Any]) -> None:
    """Only the operator key moves the shared test clock."""
    response = await stack.api.post("/v1/test/clock", json=body, headers=stack.operator)
    assert response.status == 200, await response.text()


async def test_endpoints_receive_their_events_signed_and_in_order(
    stack: Stack, receiver: Receiver
) -> None:
    tenant = await stack.new_tenant()
    every = await _call(stack, tenant, "POST", "/v1/webhook-endpoints",
                        {"url": f"{receiver.url}/every", "description": "all of it"})  # fmt: skip
    paid_only = await _call(stack, tenant, "POST", "/v1/webhook-endpoints",
                            {"url": f"{receiver.url}/paid", "types": ["invoice.paid"]})  # fmt: skip
    assert every["secret"].startswith("whsec_")
    assert every["secret"] != paid_only["secret"]
    listed = await _call(stack, tenant, "GET", "/v1/webhook-endpoints")
    assert [e["id"] for e in listed["data"]] == [every["id"], paid_only["id"]]
    assert all("secret" not in e for e in listed["data"])  # shown once only

    account = await stack.customer(tenant, "ann")  # an account, a user, a subscription
    await _call(stack, tenant, "POST", f"/v1/accounts/{account}/payment-methods",
                {"token": "tok_sandbox_success"})  # fmt: skip

    async def paid() -> bool:
        return bool(receiver.received.get("/paid"))

    await stack.eventually(paid, within=10)
    events = sorted(receiver.events("/every"), key=lambda e: e["sequence"])
    mine = [e for e in events if e["account_id"] == account]
    kinds = [e["type"] for e in mine]
    # an account's events in the order its changes were committed
    for earlier, later in (
        ("account.created", "subscription.created"),
        ("subscription.created", "invoice.created"),
        ("invoice.created", "invoice.committed"),
        ("invoice.committed", "payment.succeeded"),
        ("invoice.committed", "invoice.paid"),
    ):
        assert kinds.index(earlier) < kinds.index(later), kinds
    assert len({e["id"] for e in events}) == len(events)  # each event once
    invoice_paid = next(e for e in mine if e["type"] == "invoice.paid")
    assert invoice_paid["data"]["object"] == "invoice"
    assert invoice_paid["data"]["changes"]["status"][1] == "paid"
    assert invoice_paid["data"]["number"].startswith("INV-")  # what the customer reads
    assert invoice_paid["tenant_id"] == tenant.id
    # each endpoint's deliveries are signed with its own secret
    for path, secret in (("/every", every["secret"]), ("/paid", paid_only["secret"])):
        for body, signature in receiver.received[path]:
            verify(secret, signature, body, time.time())
    assert {e["type"] for e in receiver.events("/paid")} == {"invoice.paid"}

    # the events API lists what the endpoints received, and one can be fetched and replayed
    listed_events = await _call(stack, tenant, "GET", f"/v1/events?account_id={account}")
    assert {e["id"] for e in listed_events["data"]} == {e["id"] for e in mine}
    one = await _call(stack, tenant, "GET", f"/v1/events/{invoice_paid['id']}")
    assert one == invoice_paid
    again = await _call(stack, tenant, "POST", f"/v1/events/{invoice_paid['id']}/redeliver", {})
    assert again == {"deliveries": 2}  # both endpoints take invoice.paid

    async def replayed() -> bool:
        return len(receiver.received["/paid"]) == 2

    await stack.eventually(replayed, within=10)
    assert receiver.events("/paid")[1]["id"] == invoice_paid["id"]

    log = await _call(stack, tenant, "GET", f"/v1/webhook-endpoints/{paid_only['id']}/deliveries")
    assert [(d["event_type"], d["status"]) for d in log["data"]] == [
        ("invoice.paid", "delivered"),
        ("invoice.paid", "delivered"),
    ]


async def test_event_ids_tell_a_tenant_nothing_of_the_platform(stack: Stack) -> None:
    """Another tenant's traffic shows nowhere: ids are opaque, and an account's sequence
    counts its own events from 1. Pages follow each other by those ids."""
    busy, quiet = await stack.new_tenant("Busy"), await stack.new_tenant("Quiet")
    for n in range(3):
        await stack.customer(busy, f"user-{n}")
    account = await stack.customer(quiet, "ann")
    events = (await _call(stack, quiet, "GET", f"/v1/events?account_id={account}"))["data"]
    assert sorted(e["sequence"] for e in events) == list(range(1, len(events) + 1))
    assert [e["sequence"] for e in events] == sorted((e["sequence"] for e in events), reverse=True)
    assert all(re.fullmatch(r"evt_[0-9a-f]{20}", e["id"]) for e in events), events
    first = await _call(stack, quiet, "GET", f"/v1/events?account_id={account}&limit=2")
    rest = await _call(
        stack, quiet, "GET", f"/v1/events?account_id={account}&after={first['next']}"
    )
    assert [e["id"] for e in first["data"] + rest["data"]] == [e["id"] for e in events]
    elsewhere = (await _call(stack, busy, "GET", "/v1/events?limit=1"))["data"][0]["id"]
    foreign = await stack.api.get(f"/v1/events?after={elsewhere}", headers=quiet.admin)
    assert foreign.status == 422  # another tenant's event is no cursor of this one's
    assert (await stack.api.get(f"/v1/events/{elsewhere}", headers=quiet.admin)).status == 404


async def test_a_rotated_secret_signs_what_follows_and_a_failure_is_logged(
    stack: Stack, receiver: Receiver
) -> None:
    tenant = await stack.new_tenant()
    types = ["account.created", "account.updated"]
    endpoint = await _call(stack, tenant, "POST", "/v1/webhook-endpoints",
                           {"url": f"{receiver.url}/accounts", "types": types})  # fmt: skip
    rotated = await _call(
        stack, tenant, "POST", f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret"
    )
    assert rotated["secret"] != endpoint["secret"]
    receiver.fail_next = 1
    account = await _call(stack, tenant, "POST", "/v1/accounts", {"name": "Initech"})
    deliveries = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"

    async def failed_once() -> bool:
        log = await _call(stack, tenant, "GET", deliveries)
        return bool(log["data"]) and log["data"][0]["attempts"] == 1

    await stack.eventually(failed_once, within=10)
    failed = (await _call(stack, tenant, "GET", deliveries))["data"][0]
    assert (failed["status"], failed["last_error"]) == ("pending", "HTTP 503")
    assert failed["next_attempt_at"] is not None  # retried with backoff

    await _call(stack, tenant, "PATCH", f"/v1/accounts/{account['id']}", {"name": "Initrode"})

    async def updated() -> bool:
        return any(e["type"] == "account.updated" for e in receiver.events("/accounts"))

    await stack.eventually(updated, within=10)
    body, signature = receiver.received["/accounts"][0]
    verify(rotated["secret"], signature, body, time.time())
    event = orjson.loads(body)
    assert event["data"]["changes"] == {"name": ["Initech", "Initrode"]}

    # disabled: nothing more is sent to it
    await _call(stack, tenant, "PATCH", f"/v1/webhook-endpoints/{endpoint['id']}",
                {"disabled": True})  # fmt: skip
    await _call(stack, tenant, "POST", "/v1/accounts", {"name": "Hooli"})
    await _call(stack, tenant, "POST", "/v1/test/settle")
    assert len(receiver.events("/accounts")) == 1


async def test_bad_requests_are_named_and_tenants_see_their_own(stack: Stack) -> None:
    tenant, other = await stack.new_tenant(), await stack.new_tenant("Other")
    refused = await stack.api.post(
        "/v1/webhook-endpoints",
        json={"url": "ftp://example.com", "types": ["invoice.payed"]},
        headers=tenant.admin,
    )
    assert refused.status == 422
    named = {e["field"] for e in (await refused.json())["errors"]}
    assert named == {"url"}  # the body's shape first...
    refused = await stack.api.post(
        "/v1/webhook-endpoints",
        json={"url": "https://hooks.example.com/t", "types": ["invoice.payed", "*"]},
        headers=tenant.admin,
    )
    assert refused.status == 422
    assert "invoice.payed" in (await refused.json())["errors"][0]["reason"]  # ...then its types
    mine = await _call(stack, tenant, "POST", "/v1/webhook-endpoints",
                       {"url": "https://hooks.example.com/t"})  # fmt: skip
    hidden = await stack.api.post(
        f"/v1/webhook-endpoints/{mine['id']}/rotate-secret", headers=other.admin
    )
    assert hidden.status == 404
    assert (await _call(stack, other, "GET", "/v1/webhook-endpoints"))["data"] == []
    await _call(stack, tenant, "POST", "/v1/accounts", {"name": "Globex"})
    events = (await _call(stack, tenant, "GET", "/v1/events"))["data"]
    assert events
    assert all(e["tenant_id"] == tenant.id for e in events)
    theirs = await stack.api.get(f"/v1/events/{events[0]['id']}", headers=other.admin)
    assert theirs.status == 404
    for huge in (
        "/v1/events/evt_99999999999999999999",
        "/v1/payment-events/99999999999999999999/release",
    ):
        method = "POST" if huge.endswith("release") else "GET"
        assert (await stack.api.request(method, huge, headers=tenant.admin)).status == 404
    assert (await _call(stack, other, "GET", "/v1/events"))["data"] == []


async def test_a_trial_ending_and_a_cancellation_taking_effect_are_sent_on_their_day(
    stack: Stack, receiver: Receiver
) -> None:
    """Events that come with time, not with a request: the trial's end and the end of a
    cancelled subscription, sent when the worker reaches those days."""
    tenant = await stack.new_tenant()
    clock = await _call(stack, tenant, "GET", "/v1/test/clock")
    today = clock["now"][:10]
    catalog = {
        "effective_date": today, "currencies": ["USD"], "products": {"pro": {"category": "base"}},
        "plans": {"pro-monthly": {
            "product": "pro", "billing_period": "monthly", "entitlement": {"features": ["x"]},
            "phases": [{"type": "trial", "duration": {"unit": "days", "number": 14}},
                       {"type": "evergreen", "recurring": {"USD": "31.00"}}]}},
    }  # fmt: skip
    uploaded = await stack.api.put("/v1/catalog", json=catalog, headers=tenant.admin)
    assert uploaded.status in (200, 201), await uploaded.text()
    await _call(stack, tenant, "POST", "/v1/webhook-endpoints",
                {"url": f"{receiver.url}/subs", "types": ["subscription.phase_changed",
                                                          "subscription.expired"]})  # fmt: skip
    account = await _call(stack, tenant, "POST", "/v1/accounts", {"name": "Trialist"})
    created = await _call(stack, tenant, "POST", f"/v1/accounts/{account['id']}/subscriptions",
                          {"plan": "pro-monthly"})  # fmt: skip
    sub = created["subscription"]
    assert sub["phase"] == "trial"

    await _move_clock(stack, {"advance_days": 13})
    assert receiver.events("/subs") == []  # still in its trial
    await _move_clock(stack, {"advance_days": 1})

    async def arrived(count: int) -> Any:
        async def check() -> bool:
            return len(receiver.events("/subs")) >= count

        return check

    await stack.eventually(await arrived(1), within=10)
    [changed] = receiver.events("/subs")
    assert changed["type"] == "subscription.phase_changed"
    assert changed["data"]["id"] == sub["id"]
    assert changed["data"]["changes"]["phase"] == ["trial", "evergreen"]

    cancelled = await stack.api.post(
        f"/v1/subscriptions/{sub['id']}/cancel",
        json={"entitlement_policy": "end_of_term", "billing_policy": "end_of_term"},
        headers=tenant.admin,
    )
    assert cancelled.status == 200, await cancelled.text()
    await _move_clock(stack, {"advance_days": 40})
    await stack.eventually(await arrived(2), within=10)
    expired = receiver.events("/subs")[1]
    assert expired["type"] == "subscription.expired"
    assert expired["data"]["changes"]["status"] == ["active", "expired"]


async def test_a_change_of_what_the_gateways_answer_is_an_entitlement_event(stack: Stack) -> None:
    """Subscribing grants the plan's features, a suspension denies them, reinstating gives
    them back: each is one entitlement.changed with the answer before and after; a change
    the gateways cannot see (the account's name) is none."""
    tenant = await stack.new_tenant()
    account = await stack.customer(tenant, "eve")  # Pro, invoiced at once: in grace
    await _call(stack, tenant, "PATCH", f"/v1/accounts/{account}", {"name": "Eve's company"})
    await _call(stack, tenant, "POST", f"/v1/accounts/{account}/suspend", {})
    await _call(stack, tenant, "POST", f"/v1/accounts/{account}/reinstate", {})
    path = f"/v1/events?type=entitlement.changed&account_id={account}"
    listed = (await _call(stack, tenant, "GET", path))["data"]
    answers = [e["data"]["changes"]["entitlement"] for e in reversed(listed)]  # oldest first
    assert [(before["standing"], after["standing"]) for before, after in answers] == [
        ("cancelled", "grace"), ("grace", "suspended"), ("suspended", "grace")
    ]  # fmt: skip
    subscribed, suspended, reinstated = answers
    assert (subscribed[0]["plan"], subscribed[1]["plan"]) == (None, "pro")
    assert subscribed[1]["features"] == ["reports"]
    assert suspended[1]["reason"] == "suspended_manually"
    assert reinstated[1] == subscribed[1]
