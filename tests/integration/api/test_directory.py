"""The management API lists and manages what it creates: accounts by page and filter,
users disabled, re-enabled and removed (the gateways follow at once), one invoice."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Stack, Tenant


async def _get(stack: Stack, tenant: Tenant, path: str, status: int = 200) -> Any:
    response = await stack.api.get(path, headers=tenant.admin)
    assert response.status == status, await response.text()
    return await response.json()


async def test_accounts_are_listed_a_page_at_a_time_and_filtered(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    owing = await stack.customer(tenant, "ann")  # subscribed, unpaid: grace
    others = [
        (await stack.post("/v1/accounts", tenant, {"name": f"Shop {n}", "kind": kind}))["id"]
        for n, kind in enumerate(["consumer", "enterprise", "enterprise", "reseller"])
    ]
    await stack.post("/v1/accounts", await stack.new_tenant("Other"), {"name": "Not yours"})

    seen, after, pages = [], "", 0
    while True:
        page = await _get(stack, tenant, f"/v1/accounts?limit=2&after={after}")
        seen += [a["id"] for a in page["data"]]
        pages += 1
        if page["next"] is None:
            break
        after = page["next"]
    assert seen == sorted([owing, *others])  # every account once, in id order, no other's
    assert pages == 3

    grace = await _get(stack, tenant, "/v1/accounts?standing=grace")
    assert [(a["id"], a["balance_due"]) for a in grace["data"]] == [(owing, "49.00")]
    enterprise = await _get(stack, tenant, "/v1/accounts?kind=enterprise")
    assert sorted(a["id"] for a in enterprise["data"]) == sorted(others[1:3])

    bad = await _get(stack, tenant, "/v1/accounts?standing=late&kind=vip&limit=500", 422)
    assert {e["field"] for e in bad["errors"]} == {"limit"}  # the limit is checked first
    bad = await _get(stack, tenant, "/v1/accounts?standing=late&kind=vip", 422)
    assert {e["field"] for e in bad["errors"]} == {"standing", "kind"}
    assert "grace" in {e["field"]: e["reason"] for e in bad["errors"]}["standing"]


async def test_a_disabled_user_is_denied_and_a_removed_one_is_unknown(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    account = await stack.customer(tenant, "bea")
    await stack.wait_allowed(tenant, "bea")
    [user] = (await _get(stack, tenant, f"/v1/accounts/{account}/users"))["data"]

    async def answer(reason: str) -> bool:
        return (await stack.authorize(tenant, "bea"))["reason"] == reason

    disabled = await stack.api.patch(
        f"/v1/users/{user['id']}", json={"status": "disabled"}, headers=tenant.admin
    )
    assert (await disabled.json())["status"] == "disabled"
    await stack.eventually(lambda: answer("user_disabled"))
    await stack.api.patch(
        f"/v1/users/{user['id']}", json={"status": "active"}, headers=tenant.admin
    )
    await stack.wait_allowed(tenant, "bea")

    removed = await stack.api.delete(f"/v1/users/{user['id']}", headers=tenant.admin)
    assert removed.status == 204
    await stack.eventually(lambda: answer("unknown_user"))
    never = await stack.authorize(tenant, "nobody-ever")
    assert {**await stack.authorize(tenant, "bea"), "user": None} == {**never, "user": None}
    assert (await _get(stack, tenant, f"/v1/accounts/{account}/users"))["data"] == []
    gone = await stack.api.patch(
        f"/v1/users/{user['id']}", json={"status": "active"}, headers=tenant.admin
    )
    assert gone.status == 404

    # The id may be used again, on another account: a new life for it.
    other = await stack.customer(tenant, "someone-else")
    await stack.post(f"/v1/accounts/{other}/users", tenant, {"external_id": "bea"})
    await stack.wait_allowed(tenant, "bea")
    assert (await stack.authorize(tenant, "bea"))["account"] == other


async def test_one_invoice_is_read_by_its_id_within_its_tenant(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    account = await stack.customer(tenant, "cy")
    [listed] = (await _get(stack, tenant, f"/v1/accounts/{account}/invoices"))["data"]
    invoice = await _get(stack, tenant, f"/v1/invoices/{listed['id']}")
    assert invoice == listed
    other = await stack.new_tenant("Other")
    hidden = await stack.api.get(f"/v1/invoices/{listed['id']}", headers=other.admin)
    assert hidden.status == 404


async def test_an_accounts_subscriptions_are_listed_with_their_phase(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    account = await stack.customer(tenant, "dan")
    [subscription] = (await _get(stack, tenant, f"/v1/accounts/{account}/subscriptions"))["data"]
    assert (subscription["plan"], subscription["status"], subscription["account_id"]) == (
        "pro", "active", account,
    )  # fmt: skip
    other = await stack.new_tenant("Other")
    hidden = await stack.api.get(f"/v1/accounts/{account}/subscriptions", headers=other.admin)
    assert hidden.status == 404


async def _all_pages(stack: Stack, tenant: Tenant, path: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    after = ""
    while True:
        page = await _get(stack, tenant, f"{path}{'&' if '?' in path else '?'}limit=2{after}")
        seen += page["data"]
        if page["next"] is None:
            return seen
        after = f"&after={page['next']}"


async def test_invoices_and_payments_are_listed_across_accounts_newest_first(
    stack: Stack,
) -> None:
    tenant = await stack.new_tenant()
    accounts = [await stack.customer(tenant, user) for user in ("ann", "bob", "cy")]
    await stack.customer(await stack.new_tenant("Other"), "zed")  # never listed here
    for account, amount in zip(accounts[:2], ("49.00", "20.00"), strict=True):
        await stack.post(
            f"/v1/accounts/{account}/payments", tenant, {"amount": amount, "currency": "USD"}
        )

    invoices = await _all_pages(stack, tenant, "/v1/invoices")
    assert sorted(i["account_id"] for i in invoices) == sorted(accounts)
    assert all(i["total"] == "49.00" for i in invoices)
    keys = [(i["invoice_date"], i["id"]) for i in invoices]
    assert keys == sorted(keys, reverse=True)  # newest first, each once
    paid = await _get(stack, tenant, "/v1/invoices?status=paid")
    assert [i["account_id"] for i in paid["data"]] == [accounts[0]]
    open_ = await _get(stack, tenant, f"/v1/invoices?status=open&account_id={accounts[1]}")
    assert [(i["account_id"], i["balance"]) for i in open_["data"]] == [(accounts[1], "29.00")]
    day = invoices[0]["invoice_date"]
    assert len((await _get(stack, tenant, f"/v1/invoices?from={day}&to={day}"))["data"]) == 3
    assert (await _get(stack, tenant, "/v1/invoices?to=2000-01-01"))["data"] == []
    bad = await _get(stack, tenant, "/v1/invoices?status=late&from=soon&after=inv_nope", 422)
    assert {e["field"] for e in bad["errors"]} == {"status", "from", "after"}

    payments = await _all_pages(stack, tenant, "/v1/payments")
    assert sorted((p["account_id"], p["amount"]) for p in payments) == sorted(
        [(accounts[0], "49.00"), (accounts[1], "20.00")]
    )
    one = await _get(stack, tenant, f"/v1/payments/{payments[0]['id']}")
    assert one == payments[0]
    other = await stack.new_tenant("Third")
    await _get(stack, other, f"/v1/payments/{payments[0]['id']}", 404)
    assert (await _get(stack, other, "/v1/invoices"))["data"] == []


async def test_the_plans_on_sale_are_listed_with_their_prices(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    await _get(stack, tenant, "/v1/plans", 404)  # no catalog yet: said so
    await stack.customer(tenant, "ann", price="49.50")
    [plan] = (await _get(stack, tenant, "/v1/plans"))["data"]
    assert plan["code"] == "pro"
    assert plan["features"] == ["reports"]
    assert [(p["type"], p["recurring"]) for p in plan["phases"]] == [
        ("evergreen", {"USD": "49.50"})
    ]


async def test_an_account_time_zone_changes_until_its_first_invoice(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    fresh = await stack.post("/v1/accounts", tenant, {"name": "New"})
    moved = await stack.api.patch(
        f"/v1/accounts/{fresh['id']}", json={"timezone": "Asia/Tokyo"}, headers=tenant.admin
    )
    assert moved.status == 200, await moved.text()
    assert (await moved.json())["timezone"] == "Asia/Tokyo"
    bad = await stack.api.patch(
        f"/v1/accounts/{fresh['id']}", json={"timezone": "Mars/Olympus"}, headers=tenant.admin
    )
    assert bad.status == 422
    billed = await stack.customer(tenant, "ann")
    refused = await stack.api.patch(
        f"/v1/accounts/{billed}", json={"timezone": "Asia/Tokyo"}, headers=tenant.admin
    )
    assert refused.status == 409
    assert (await refused.json())["errors"][0]["field"] == "timezone"
