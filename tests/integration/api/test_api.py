"""The management API as a tenant's billing admin uses it, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from openapi_spec_validator import validate

from shared.clock import RedisTestClock
from tests.integration.conftest import Stack


async def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = await response.json()
    assert body["status"] == status
    return body


async def test_only_the_operator_creates_tenants(stack: Stack) -> None:
    await problem(await stack.api.post("/v1/tenants", json={"name": "x"}), 401)
    tenant = await stack.new_tenant()
    body = await problem(
        await stack.api.post("/v1/tenants", json={"name": "x"}, headers=tenant.admin), 403
    )
    assert body["code"] == "forbidden"
    await problem(
        await stack.api.post(
            "/v1/tenants", json={"name": "x"}, headers={"Authorization": "Bearer tgk_0.nope"}
        ),
        401,
    )


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"code": "pro", "name": "Pro", "currency": "USD", "amount": 49.0}, "amount",
         "decimal strings"),
        ({"code": "pro", "name": "Pro", "currency": "USD", "amount": "49.001"}, "amount",
         "2 decimal places"),
        ({"code": "pro", "name": "Pro", "currency": "XXQ", "amount": "49"}, "currency",
         "not an ISO 4217"),
        ({"code": "pro", "name": "Pro", "currency": "USD"}, "amount", "missing required"),
        ({"code": "pro", "name": "Pro", "currency": "USD", "amount": "1", "colour": "red"},
         "colour", "unknown field"),
        ({"code": "Pro Plan", "name": "Pro", "currency": "USD", "amount": "1"}, "code",
         "lowercase letters, digits"),
    ],
)  # fmt: skip
async def test_bad_input_names_the_field_and_the_reason(
    stack: Stack, body: dict[str, Any], field: str, reason: str
) -> None:
    tenant = await stack.new_tenant()
    result = await problem(await stack.api.post("/v1/plans", json=body, headers=tenant.admin), 422)
    assert result["errors"][0]["field"] == field
    assert reason in result["errors"][0]["reason"]


async def test_every_bad_field_of_a_request_is_named_at_once(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    patch = await stack.api.patch(
        "/v1/tenant",
        json={"grace_days": -3, "net_terms_days": "thirty", "name": "Acme", "colour": "red"},
        headers=tenant.admin,
    )
    errors = {e["field"]: e["reason"] for e in (await problem(patch, 422))["errors"]}
    assert set(errors) == {"grace_days", "net_terms_days", "colour"}
    assert ">= 0" in errors["grace_days"]
    assert "int" in errors["net_terms_days"]
    plan = await stack.api.post(
        "/v1/plans", json={"code": "Pro Plan", "currency": "usd"}, headers=tenant.admin
    )
    errors = {e["field"]: e["reason"] for e in (await problem(plan, 422))["errors"]}
    assert set(errors) == {"code", "currency", "name", "amount"}
    assert "missing required" in errors["amount"]
    unchanged = await (await stack.api.get("/v1/tenant", headers=tenant.admin)).json()
    assert unchanged["grace_days"] != -3


async def test_malformed_json_is_a_400_not_a_500(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    for body in (b"{nope", b"1T\xff", b"[1, 2"):
        response = await stack.api.post("/v1/accounts", data=body, headers=tenant.admin)
        assert (await problem(response, 400))["code"] == "malformed_body", body
    patch = await stack.api.patch("/v1/tenant", data=b"1T\xff", headers=tenant.admin)
    assert (await problem(patch, 400))["code"] == "malformed_body"


async def test_a_tenant_never_sees_another_tenants_account(stack: Stack) -> None:
    acme, globex = await stack.new_tenant("Acme"), await stack.new_tenant("Globex")
    account_id = await stack.customer(acme, "alice")
    own = await stack.api.get(f"/v1/accounts/{account_id}", headers=acme.admin)
    assert own.status == 200
    for path in (f"/v1/accounts/{account_id}", f"/v1/accounts/{account_id}/invoices"):
        await problem(await stack.api.get(path, headers=globex.admin), 404)
    pay = await stack.api.post(
        f"/v1/accounts/{account_id}/payments",
        json={"amount": "49.00", "currency": "USD"},
        headers=globex.admin,
    )
    await problem(pay, 404)


async def test_subscription_invoices_the_first_month_and_payment_settles_it(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    account_id = await stack.customer(tenant, "alice", price="49.99")
    invoices = await (
        await stack.api.get(f"/v1/accounts/{account_id}/invoices", headers=tenant.admin)
    ).json()
    assert [(i["total"], i["balance"], i["status"]) for i in invoices["data"]] == [
        ("49.99", "49.99", "open")
    ]
    paid = await stack.post(
        f"/v1/accounts/{account_id}/payments", tenant, {"amount": "60.00", "currency": "USD"}
    )
    assert paid["account"]["balance_due"] == "0.00"
    assert paid["account"]["credit"] == "10.01"  # the overpayment is kept as credit
    assert paid["account"]["standing"] == "active"


async def test_duplicate_user_is_a_conflict_naming_the_field(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    account_id = await stack.customer(tenant, "alice")
    response = await stack.api.post(
        f"/v1/accounts/{account_id}/users", json={"external_id": "alice"}, headers=tenant.admin
    )
    assert (await problem(response, 409))["errors"][0]["field"] == "external_id"


async def test_both_openapi_documents_are_valid_and_complete(stack: Stack) -> None:
    worker = await (await stack.api.get("/openapi.json")).json()
    gateway = await (await stack.gateway.get("/openapi.json")).json()
    for document in (worker, gateway):
        validate(document)  # OpenAPI 3.1, by openapi-spec-validator
        assert document["servers"][0]["url"].startswith("http://127.0.0.1:")
    assert "post" in worker["paths"]["/v1/accounts/{account_id}/payments"]
    assert "PaymentCreate" in worker["components"]["schemas"]
    payments = worker["paths"]["/v1/accounts/{account_id}/payments"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in payments["parameters"]}
    catalog = worker["paths"]["/v1/catalog"]["put"]["requestBody"]["content"]
    assert set(catalog) == {"application/yaml", "application/json"}
    # Every route the gateway serves is in its document, with the methods it answers.
    served = {
        (r.resource.canonical, r.method.lower())
        for r in stack.gateway.app.router.routes()
        if r.resource is not None and r.method not in ("*", "HEAD")
        and r.resource.canonical != "/{unknown}"
    }  # fmt: skip
    documented = {(path, method) for path, ops in gateway["paths"].items() for method in ops}
    assert served <= documented, served - documented
    reasons = gateway["paths"]["/v1/authorize"]["post"]["responses"]["200"]["content"]
    assert (
        "payment_overdue" in reasons["application/json"]["schema"]["properties"]["reason"]["enum"]
    )


async def test_the_test_clock_is_refused_outside_test_mode_only(stack: Stack) -> None:
    moved = await stack.api.post("/v1/test/clock", json={"advance_days": 2}, headers=stack.operator)
    assert moved.status == 200
    assert (await moved.json())["offset_seconds"] == pytest.approx(2 * 86400)
    bad = await stack.api.post("/v1/test/clock", json={"advance_days": -1}, headers=stack.operator)
    assert (await problem(bad, 422))["errors"][0]["field"] == "advance_days"


async def test_an_outage_moves_the_clock_with_the_worker_counted_down(
    stack: Stack, stack_redis_url: str
) -> None:
    """A jump counts as the worker awake to its end; an outage moves time on but not the
    instant the worker was last awake, and every process following the clock sees both."""
    jumped = await stack.api.post(
        "/v1/test/clock", json={"advance_days": 2}, headers=stack.operator
    )
    jump_end = datetime.fromisoformat((await jumped.json())["now"])
    down = await stack.api.post(
        "/v1/test/clock", json={"advance_days": 3, "outage": True}, headers=stack.operator
    )
    assert down.status == 200
    assert (await down.json())["offset_seconds"] == pytest.approx(5 * 86400, abs=60)
    client = aioredis.Redis.from_url(stack_redis_url)
    follower = RedisTestClock(client)
    try:
        await follower.start()
        awake = follower.awake_through()
        assert awake is not None
        assert abs(awake - jump_end) < timedelta(seconds=5)
        assert follower.now() - awake > timedelta(days=2, hours=23)
    finally:
        await follower.stop()
        await client.aclose()
    back = await stack.api.post(
        "/v1/test/clock",
        json={"set_to": "2020-01-01T00:00:00Z", "outage": True},
        headers=stack.operator,
    )
    assert (await problem(back, 422))["errors"][0]["field"] == "outage"


async def test_every_json_answer_ends_in_a_newline_for_shell_users(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    await stack.wait_key(tenant)
    answers = [
        await stack.api.get("/v1/tenant", headers=tenant.admin),
        await stack.api.get("/v1/accounts/acc_missing", headers=tenant.admin),
        await stack.gateway.post("/v1/authorize", json={"user": "x"}, headers=tenant.gateway),
        await stack.gateway.post("/v1/authorize", json={}, headers=tenant.gateway),
    ]
    assert [r.status for r in answers] == [200, 404, 200, 422]
    for response in answers:
        assert (await response.read()).endswith(b"}\n")


async def test_the_gateway_answers_unknown_paths_and_methods_with_problems(stack: Stack) -> None:
    missing = await stack.gateway.get("/v1/authorise")
    assert missing.status == 404
    assert missing.content_type == "application/problem+json"
    assert "/v1/authorize" in (await missing.json())["detail"]
    wrong = await stack.gateway.get("/v1/authorize")
    assert wrong.status == 405
    assert wrong.headers["Allow"] == "POST"
    assert wrong.content_type == "application/problem+json"


async def test_invoicing_is_held_only_where_the_account_is_invoiced(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    created = await stack.api.post(
        "/v1/accounts", json={"name": "Partner", "kind": "reseller"}, headers=tenant.admin
    )
    partner = await created.json()
    shop = {"name": "Shop", "parent_id": partner["id"], "invoicing": "held"}
    refused = await stack.api.post("/v1/accounts", json=shop, headers=tenant.admin)
    error = (await problem(refused, 422))["errors"][0]
    assert error["field"] == "invoicing"
    assert f"invoiced through its parent {partner['id']}" in error["reason"]
    path = f"/v1/accounts/{partner['id']}"
    unknown = await stack.api.patch(path, json={"invoicing": "paused"}, headers=tenant.admin)
    error = (await problem(unknown, 422))["errors"][0]
    assert error["field"] == "invoicing"
    assert "'held'" in error["reason"], error
    held = await stack.api.patch(path, json={"invoicing": "held"}, headers=tenant.admin)
    assert (await held.json())["invoicing"] == "held"
    now = await stack.api.post(f"{path}/invoices", json={}, headers=tenant.admin)
    assert (await problem(now, 409))["errors"][0]["field"] == "invoicing"


async def test_a_negotiated_price_is_billed_shown_and_each_bad_one_named(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    plan = {"code": "pro", "name": "Pro", "currency": "USD", "amount": "49.00"}
    await stack.post("/v1/plans", tenant, plan)
    account = await stack.post("/v1/accounts", tenant, {"name": "Initech", "kind": "enterprise"})
    path = f"/v1/accounts/{account['id']}/subscriptions"
    bad = [{"phase": "trial", "recurring": "20.00"}, {"phase": "evergreen", "recurring": "39.999"},
           {"phase": "evergreen"}]  # fmt: skip
    refused = await stack.api.post(
        path, json={"plan": "pro", "price_overrides": bad}, headers=tenant.admin
    )
    errors = {e["field"]: e["reason"] for e in (await problem(refused, 422))["errors"]}
    assert set(errors) == {"price_overrides[0].phase", "price_overrides[1].recurring",
                           "price_overrides[2].phase"}, errors  # fmt: skip
    assert "has no trial phase" in errors["price_overrides[0].phase"]
    assert "2 decimal places" in errors["price_overrides[1].recurring"]
    assert "given twice" in errors["price_overrides[2].phase"]
    empty = [{"phase": "evergreen"}]
    refused = await stack.api.post(
        path, json={"plan": "pro", "price_overrides": empty}, headers=tenant.admin
    )
    error = (await problem(refused, 422))["errors"][0]
    assert error["field"] == "price_overrides[0]"
    assert "a fixed price, a recurring price, or both" in error["reason"]
    deal = [{"phase": "evergreen", "recurring": "39"}]
    created = await stack.post(path, tenant, {"plan": "pro", "price_overrides": deal})
    assert created["invoice"]["total"] == "39.00"  # a whole first month at the deal's price
    assert created["subscription"]["price_overrides"] == [
        {"phase": "evergreen", "fixed": None, "recurring": "39.00"}
    ]
