"""The payment queue: provider webhooks are verified, stored once and applied once, in any
order; automatic collection charges once per key and reconciles what it could not learn."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from billing_worker.notifications.signing import HEADER, sign
from billing_worker.payments.providers import SandboxProvider
from tests.integration.conftest import Stack, Tenant

CATALOG = {
    "effective_date": "2020-01-01",
    "currencies": ["USD"],
    "products": {"pro": {"category": "base"}},
    "plans": {
        "pro-monthly": {
            "product": "pro",
            "billing_period": "monthly",
            "entitlement": {"features": ["reports"]},
            "phases": [{"type": "evergreen", "recurring": {"USD": "31.00"}}],
        }
    },
}


async def _customer(stack: Stack, tenant: Tenant, user: str, token: str) -> str:
    response = await stack.api.put("/v1/catalog", json=CATALOG, headers=tenant.admin)
    assert response.status in (200, 201), await response.text()
    account = await stack.post("/v1/accounts", tenant, {"name": user})
    await stack.post(f"/v1/accounts/{account['id']}/users", tenant, {"external_id": user})
    await stack.post(f"/v1/accounts/{account['id']}/payment-methods", tenant, {"token": token})
    await stack.post(f"/v1/accounts/{account['id']}/subscriptions", tenant, {"plan": "pro-monthly"})
    return str(account["id"])


async def _get(stack: Stack, tenant: Tenant, path: str) -> Any:
    response = await stack.api.get(path, headers=tenant.admin)
    assert response.status == 200, await response.text()
    return await response.json()


async def _attempts(stack: Stack, tenant: Tenant, account: str) -> list[dict[str, Any]]:
    body = await _get(stack, tenant, f"/v1/accounts/{account}/payment-attempts")
    return list(body["data"])


async def _secret(stack: Stack, tenant: Tenant) -> str:
    return tenant.provider_webhook_secret


async def _webhook(
    stack: Stack, tenant_id: str, secret: str, event: dict[str, Any], *, at: float | None = None
) -> tuple[int, Any]:
    raw = orjson.dumps(event)
    header = sign(secret, int(at if at is not None else time.time()), raw)
    response = await stack.api.post(
        f"/v1/providers/sandbox/webhooks/{tenant_id}",
        data=raw,
        headers={HEADER: header, "Content-Type": "application/json"},
    )
    body = await response.json()
    return response.status, body


async def test_webhooks_need_a_fresh_valid_signature(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    secret = await _secret(stack, tenant)
    event = {"id": "evt_1", "type": "charge.succeeded", "data": {"idempotency_key": "nope"}}
    raw = orjson.dumps(event)
    path = f"/v1/providers/sandbox/webhooks/{tenant.id}"

    missing = await stack.api.post(path, data=raw)
    assert missing.status == 401
    problem = await missing.json()
    assert "Tollgate-Signature" in problem["detail"]
    assert (problem["code"], problem["title"]) == (
        "bad_signature",
        "Missing or invalid webhook signature.",
    )  # a webhook has no API key: the title says what is wrong
    forged = await stack.api.post(
        path, data=raw, headers={HEADER: sign("whsec_x", int(time.time()), raw)}
    )
    assert forged.status == 401
    stale, body = await _webhook(stack, tenant.id, secret, event, at=time.time() - 3600)
    assert stale == 401
    assert "timestamp" in body["detail"]
    tampered = await stack.api.post(
        path,
        data=raw.replace(b"nope", b"nope2"),
        headers={HEADER: sign(secret, int(time.time()), raw)},
    )
    assert tampered.status == 401
    # Another tenant's id with this tenant's secret: refused the same way (no oracle).
    other, _ = await _webhook(stack, "ten_unknown", secret, event)
    assert other == 401
    accepted, ack = await _webhook(stack, tenant.id, secret, event)
    assert accepted == 200
    assert ack == {"received": True, "duplicate": False, "applied": False}


async def test_duplicate_replayed_and_reordered_events_change_nothing_twice(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    secret = await _secret(stack, tenant)
    # A timeout: the charge's outcome is unknown, so the provider's events decide it.
    account = await _customer(stack, tenant, "uma", "tok_sandbox_timeout")

    async def attempt_unknown() -> bool:
        attempts = await _attempts(stack, tenant, account)
        return [a["status"] for a in attempts] == ["unknown"]

    await stack.eventually(attempt_unknown)
    key = (await _attempts(stack, tenant, account))[0]["idempotency_key"]
    refund = {"id": "evt_refund", "type": "charge.refunded",
              "data": {"idempotency_key": key, "amount": "10.00"}}  # fmt: skip
    succeeded = {"id": "evt_ok", "type": "charge.succeeded",
                 "data": {"idempotency_key": key, "reference": "ch_1"}}  # fmt: skip
    failed = {"id": "evt_late_failure", "type": "charge.failed",
              "data": {"idempotency_key": key, "reason": "insufficient_funds"}}  # fmt: skip

    # Reordered: the refund arrives before the charge it refunds; it waits in the queue.
    assert (await _webhook(stack, tenant.id, secret, refund))[1]["duplicate"] is False
    account_now = await _get(stack, tenant, f"/v1/accounts/{account}")
    assert account_now["balance_due"] == "31.00"
    assert (await _webhook(stack, tenant.id, secret, succeeded))[1]["duplicate"] is False

    async def refunded() -> bool:
        payments = (await _get(stack, tenant, f"/v1/accounts/{account}/payments"))["data"]
        return len(payments) == 1 and payments[0]["refunded"] == "10.00"

    await stack.eventually(refunded)
    # A failure reported after the success is superseded; replays are duplicates.
    assert (await _webhook(stack, tenant.id, secret, failed))[1]["duplicate"] is False
    for event in (refund, succeeded, failed, succeeded):
        status, ack = await _webhook(stack, tenant.id, secret, event)
        assert status == 200
        assert ack["duplicate"] is True, event["id"]
    await stack.api.post("/v1/test/settle", headers=tenant.admin)

    payments = (await _get(stack, tenant, f"/v1/accounts/{account}/payments"))["data"]
    assert [(p["amount"], p["refunded"]) for p in payments] == [("31.00", "10.00")]
    final = await _get(stack, tenant, f"/v1/accounts/{account}")
    # a refund made at the provider is a goodwill refund: a credit note, nothing owed again
    assert (final["balance_due"], final["credit"]) == ("0.00", "0.00")
    assert [a["status"] for a in await _attempts(stack, tenant, account)] == ["succeeded"]


async def test_collection_result_and_webhook_for_one_charge_pay_once(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    secret = await _secret(stack, tenant)
    account = await _customer(stack, tenant, "vic", "tok_sandbox_success")

    async def paid() -> bool:
        found = await _get(stack, tenant, f"/v1/accounts/{account}")
        return bool(found["balance_due"] == "0.00" and found["standing"] == "active")

    await stack.eventually(paid)
    (attempt,) = await _attempts(stack, tenant, account)
    assert attempt["status"] == "succeeded"
    # The provider's own webhook for the same charge arrives after the collector's answer.
    event = {"id": "evt_dup", "type": "charge.succeeded",
             "data": {"idempotency_key": attempt["idempotency_key"]}}  # fmt: skip
    status, ack = await _webhook(stack, tenant.id, secret, event)
    assert (status, ack["duplicate"]) == (200, True)
    payments = (await _get(stack, tenant, f"/v1/accounts/{account}/payments"))["data"]
    assert [p["amount"] for p in payments] == ["31.00"]
    await stack.wait_allowed(tenant, "vic")


async def test_refunds_and_write_offs_through_the_api(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    account = await _customer(stack, tenant, "wes", "tok_sandbox_success")

    async def one_payment() -> bool:
        body = await _get(stack, tenant, f"/v1/accounts/{account}/payments")
        return len(body["data"]) == 1

    await stack.eventually(one_payment)
    payment = (await _get(stack, tenant, f"/v1/accounts/{account}/payments"))["data"][0]
    path = f"/v1/payments/{payment['id']}/refunds"
    too_much = await stack.api.post(path, json={"amount": "40.00"}, headers=tenant.admin)
    assert too_much.status == 422
    assert (await too_much.json())["errors"][0]["field"] == "amount"
    refund = await stack.post(path, tenant, {"amount": "10.00", "reason": "goodwill"})
    assert refund["adjusted"] is True  # a credit note: the invoice stays paid
    assert refund["payment"]["refunded"] == "10.00"
    assert refund["payment"]["account"]["balance_due"] == "0.00"
    # the rest given back to be settled another way: it re-opens (collected by hand here)
    await stack.api.patch(
        f"/v1/accounts/{account}", json={"collection": "manual"}, headers=tenant.admin
    )
    refund = await stack.post(
        path, tenant, {"amount": "21.00", "reason": "charged twice", "adjust": False}
    )
    assert refund["adjusted"] is False
    assert refund["payment"]["refunded"] == "31.00"
    assert refund["payment"]["account"]["balance_due"] == "21.00"
    other = await stack.new_tenant("Other")
    assert (await stack.api.post(path, json={"amount": "1.00"}, headers=other.admin)).status == 404

    invoices = (await _get(stack, tenant, f"/v1/accounts/{account}/invoices"))["data"]
    [reopened] = [i for i in invoices if i["status"] == "open"]  # the credit note is paid
    write_off = f"/v1/invoices/{reopened['id']}/write-off"
    written = await stack.api.post(write_off, json={"reason": "refunded"}, headers=tenant.admin)
    assert written.status == 200
    assert (await written.json())["balance_due"] == "0.00"
    again = await stack.api.post(write_off, json={}, headers=tenant.admin)
    assert again.status == 409


async def test_no_transaction_is_open_while_the_provider_gives_the_money_back(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await stack.new_tenant()
    account = await _customer(stack, tenant, "ida", "tok_sandbox_success")

    async def one_payment() -> bool:
        return len((await _get(stack, tenant, f"/v1/accounts/{account}/payments"))["data"]) == 1

    await stack.eventually(one_payment)
    [payment] = (await _get(stack, tenant, f"/v1/accounts/{account}/payments"))["data"]
    asked, answer = asyncio.Event(), asyncio.Event()
    refund = SandboxProvider.refund

    async def slow_refund(self: SandboxProvider, *args: Any, **kwargs: Any) -> Any:
        asked.set()
        await answer.wait()  # the provider takes its time
        return await refund(self, *args, **kwargs)

    monkeypatch.setattr(SandboxProvider, "refund", slow_refund)
    refunding = asyncio.create_task(
        stack.api.post(f"/v1/payments/{payment['id']}/refunds", json={"amount": "5.00"},
                       headers=tenant.admin)
    )  # fmt: skip
    await asyncio.wait_for(asked.wait(), 10)
    # while the provider is asked, the database is free: another change goes through
    changed = await asyncio.wait_for(
        stack.api.patch("/v1/tenant", json={"grace_days": 9}, headers=tenant.admin), 10
    )
    assert changed.status == 200
    mid = (await _get(stack, tenant, f"/v1/accounts/{account}/payments"))["data"][0]
    assert mid["refunded"] == "0.00"  # recorded only once the provider has given it back
    answer.set()
    done = await refunding
    assert done.status == 201, await done.text()
    assert (await done.json())["payment"]["refunded"] == "5.00"


async def test_a_payment_pays_the_invoices_it_names_first(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    account = await stack.customer(tenant, "una")  # Pro: 49.00 owed on its first invoice
    fee = await stack.post(
        f"/v1/accounts/{account}/charges", tenant,
        {"amount": "15.00", "currency": "USD", "description": "onboarding"},
    )  # fmt: skip
    other = await stack.customer(tenant, "vic")
    other_invoice = (await _get(stack, tenant, f"/v1/accounts/{other}/invoices"))["data"][0]
    path = f"/v1/accounts/{account}/payments"
    refused = await stack.api.post(
        path,
        json={"amount": "15.00", "currency": "USD",
              "invoices": ["inv_nope", other_invoice["id"], fee["id"], fee["id"]]},
        headers=tenant.admin,
    )  # fmt: skip
    assert refused.status == 422
    fields = {e["field"] for e in (await refused.json())["errors"]}
    assert fields == {"invoices[0]", "invoices[1]", "invoices"}  # unknown, another's, twice
    # a wire for the onboarding fee: it pays that invoice, not the oldest
    await stack.post(
        path, tenant,
        {"amount": "15.00", "currency": "USD", "method": "wire", "invoices": [fee["id"]]},
    )  # fmt: skip
    invoices = {
        i["id"]: i for i in (await _get(stack, tenant, f"/v1/accounts/{account}/invoices"))["data"]
    }
    assert invoices[fee["id"]]["status"] == "paid"
    [first] = [i for i in invoices.values() if i["id"] != fee["id"]]
    assert (first["status"], first["balance"]) == ("open", "49.00")
    paid_again = await stack.api.post(
        path, json={"amount": "1.00", "currency": "USD", "invoices": [fee["id"]]},
        headers=tenant.admin,
    )  # fmt: skip
    assert paid_again.status == 422  # a paid invoice is named by path
    assert "not open" in (await paid_again.json())["errors"][0]["reason"]
