"""The billing API's dry runs say what would be billed and write nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.integration.conftest import Stack


async def test_previews_and_dry_runs_write_nothing(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    account_id = await stack.customer(tenant, "pat", price="31.00")
    base = f"/v1/accounts/{account_id}"

    async def invoices() -> list[dict[str, object]]:
        response = await stack.api.get(f"{base}/invoices", headers=tenant.admin)
        body = await response.json()
        return list(body["data"])

    before = await invoices()
    assert [i["total"] for i in before] == ["31.00"]
    target = (datetime.now(UTC) + timedelta(days=40)).date().isoformat()
    preview = await stack.api.post(
        f"{base}/invoices", json={"target_date": target, "dry_run": True}, headers=tenant.admin
    )
    assert preview.status == 200, await preview.text()
    body = await preview.json()
    assert [i["kind"] for i in body["items"]] == ["recurring"]
    assert body["total"] == "31.00"

    sub_id = before[0]["items"][0]["subscription_id"]  # type: ignore[index]
    cancel = await stack.api.post(
        f"/v1/subscriptions/{sub_id}/cancel",
        json={"billing_policy": "start_of_term", "dry_run": True},
        headers=tenant.admin,
    )
    assert cancel.status == 200, await cancel.text()
    result = await cancel.json()
    assert result["dry_run"] is True
    assert [(i["kind"], i["amount"]) for i in result["invoice"]["items"]] == [
        ("repair", "-31.00"),
        ("credit_generated", "31.00"),
    ]
    # The credit would pay the still-open first invoice, so none is left over.
    assert result["invoice"]["credit_after"] == "0.00"
    assert await invoices() == before
    subscription = await stack.api.get(f"/v1/subscriptions/{sub_id}", headers=tenant.admin)
    assert (await subscription.json())["status"] == "active"
