"""Invoice adjustments over the API: what the history records, what is refused and why,
and that another tenant's invoices are out of reach."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Stack, Tenant


async def _json(stack: Stack, method: str, path: str, tenant: Tenant, **kw: Any) -> Any:
    response = await stack.api.request(method, path, headers=tenant.admin, **kw)
    return response.status, await response.json()


async def test_adjustments_are_recorded_in_the_invoice_history(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    account = await stack.customer(tenant, "pat", price="31.00")
    _, invoices = await _json(stack, "GET", f"/v1/accounts/{account}/invoices", tenant)
    first = invoices["data"][0]
    item = first["items"][0]["id"]

    status, carrier = await _json(
        stack, "POST", f"/v1/invoices/{first['id']}/items/{item}/adjustments", tenant,
        json={"amount": "25.00", "reason": "outage"},
    )  # fmt: skip
    assert status == 201, carrier
    assert [(i["kind"], i["amount"], i["linked_item_id"]) for i in carrier["items"]] == [
        ("adjustment", "-25.00", item),
        ("credit_generated", "25.00", None),
    ]
    # More than the 6.00 left of the item is refused, naming the amount.
    status, problem = await _json(
        stack, "POST", f"/v1/invoices/{first['id']}/items/{item}/adjustments", tenant,
        json={"amount": "6.01"},
    )  # fmt: skip
    assert status == 409
    assert problem["errors"][0]["field"] == "amount"
    assert "6.00" in problem["errors"][0]["reason"]

    status, body = await _json(
        stack, "POST", f"/v1/invoices/{first['id']}/write-off", tenant, json={"reason": "bad debt"}
    )
    assert status == 200, body
    status, body = await _json(
        stack, "POST", f"/v1/invoices/{first['id']}/write-off/undo", tenant,
        json={"reason": "paid after all"},
    )  # fmt: skip
    assert status == 200, body
    assert body["balance_due"] == "6.00"

    _, history = await _json(stack, "GET", f"/v1/invoices/{first['id']}/history", tenant)
    assert [(e["action"], e["amount"], e["reason"]) for e in history["data"]] == [
        ("item_adjusted", "25.00", "outage"),
        ("written_off", None, "bad debt"),
        ("write_off_undone", None, "paid after all"),
    ]
    assert history["data"][0]["related_invoice_id"] == carrier["id"]

    # A paid invoice cannot be voided; the credit invoice (paid, 0.00) says why.
    status, problem = await _json(stack, "POST", f"/v1/invoices/{carrier['id']}/void", tenant,
                                  json={})  # fmt: skip
    assert status == 409
    assert "only an unpaid one is voided" in problem["detail"]


async def test_bad_amounts_and_other_tenants_are_refused(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    account = await stack.customer(tenant, "pat", price="31.00")
    status, problem = await _json(
        stack, "POST", f"/v1/accounts/{account}/credits", tenant,
        json={"amount": "10.001", "currency": "USD"},
    )  # fmt: skip
    assert status == 422
    assert problem["errors"][0]["field"] == "amount"
    status, problem = await _json(
        stack, "POST", f"/v1/accounts/{account}/charges", tenant,
        json={"amount": "5.00", "currency": "EUR", "description": "fee"},
    )  # fmt: skip
    assert status == 422
    assert problem["errors"][0]["field"] == "currency"

    other = await stack.new_tenant("Other SaaS")
    _, invoices = await _json(stack, "GET", f"/v1/accounts/{account}/invoices", tenant)
    invoice = invoices["data"][0]["id"]
    for method, path, body in (
        ("POST", f"/v1/accounts/{account}/credits", {"amount": "1.00", "currency": "USD"}),
        ("POST", f"/v1/invoices/{invoice}/void", {}),
        ("POST", f"/v1/invoices/{invoice}/write-off/undo", {}),
        ("GET", f"/v1/invoices/{invoice}/history", None),
    ):
        status, _ = await _json(stack, method, path, other, json=body)
        assert status == 404, (method, path)


async def test_a_retried_credit_is_given_once(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    account = await stack.customer(tenant, "pat", price="31.00")
    headers = {**tenant.admin, "Idempotency-Key": "goodwill-1"}
    for _ in range(2):
        response = await stack.api.post(
            f"/v1/accounts/{account}/credits",
            json={"amount": "40.00", "currency": "USD", "reason": "goodwill"},
            headers=headers,
        )
        assert response.status == 201, await response.text()
    _, found = await _json(stack, "GET", f"/v1/accounts/{account}", tenant)
    # 40.00 once: January's 31.00 paid, 9.00 left as credit (twice would leave 49.00)
    assert (found["balance_due"], found["credit"]) == ("0.00", "9.00")
