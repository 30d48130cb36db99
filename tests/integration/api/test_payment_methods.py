"""Payment methods hold provider tokens only: card data is refused wherever it appears."""

from __future__ import annotations

from sqlalchemy import text

from billing_worker.db.engine import create_engine
from tests.integration.conftest import Stack

CARD = "4242 4242 4242 4242"


async def test_tokens_are_stored_and_card_data_is_refused_by_field(
    stack: Stack, database_url: str
) -> None:
    acme = await stack.new_tenant("Acme")
    other = await stack.new_tenant("Other")
    account = await stack.post("/v1/accounts", acme, {"name": "Pat"})
    methods = f"/v1/accounts/{account['id']}/payment-methods"

    first = await stack.post(methods, acme, {"token": "tok_sandbox_success", "label": "Visa 4242"})
    assert (first["provider"], first["default"]) == ("sandbox", True)
    second = await stack.post(methods, acme, {"token": "tok_sandbox_stolen", "default": False})
    assert second["default"] is False

    refused = [
        {"token": "tok_sandbox_success", "card_number": CARD},
        {"token": CARD.replace(" ", "")},
        {"token": "tok_sandbox_timeout", "label": f"card {CARD}"},
        {"token": "tok_sandbox_timeout", "cvc": "123", "exp_month": 12},
    ]
    expected_fields = [["card_number"], ["token"], ["label"], ["cvc", "exp_month"]]
    for body, fields in zip(refused, expected_fields, strict=True):
        response = await stack.api.post(methods, json=body, headers=acme.admin)
        assert response.status == 422, body
        assert response.content_type == "application/problem+json"
        problem = await response.json()
        assert [e["field"] for e in problem["errors"]] == fields
        assert "tokenize the card" in problem["errors"][0]["reason"]

    unknown = await stack.api.post(methods, json={"token": "tok_live_x"}, headers=acme.admin)
    assert unknown.status == 422
    assert (await unknown.json())["errors"][0]["field"] == "token"
    again = await stack.api.post(methods, json={"token": "tok_sandbox_stolen"}, headers=acme.admin)
    assert again.status == 409

    payment = await stack.api.post(
        f"/v1/accounts/{account['id']}/payments",
        json={"amount": "5.00", "currency": "USD", "reference": CARD},
        headers=acme.admin,
    )
    assert payment.status == 422
    assert (await payment.json())["errors"][0]["field"] == "reference"

    listed = await (await stack.api.get(methods, headers=acme.admin)).json()
    assert [(m["token"], m["default"]) for m in listed["data"]] == [
        ("tok_sandbox_success", True),
        ("tok_sandbox_stolen", False),
    ]
    assert (await stack.api.get(methods, headers=other.admin)).status == 404
    gone = await stack.api.delete(f"/v1/payment-methods/{second['id']}", headers=other.admin)
    assert gone.status == 404
    gone = await stack.api.delete(f"/v1/payment-methods/{second['id']}", headers=acme.admin)
    assert gone.status == 204

    # Nothing shaped like the card reached the database, in any table.
    engine = create_engine(database_url)
    try:
        rows = []
        async with engine.connect() as connection:
            for table in ("payment_methods", "payments", "accounts"):
                rows += (await connection.execute(text(f"SELECT * FROM {table}"))).all()
        dump = " ".join(str(row) for row in rows)
    finally:
        await engine.dispose()
    assert "4242424242424242" not in dump.replace(" ", "")
    assert "tok_sandbox_success" in dump


async def test_a_charged_card_can_be_removed_and_another_made_the_default(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    account = await stack.post("/v1/accounts", tenant, {"name": "Rae"})
    methods = f"/v1/accounts/{account['id']}/payment-methods"
    declining = await stack.post(methods, tenant, {"token": "tok_sandbox_expired"})
    spare = await stack.post(
        methods, tenant, {"token": "tok_sandbox_success_mc5454", "default": False}
    )
    assert spare["default"] is False
    await stack.post(
        "/v1/plans", tenant, {"code": "pro", "name": "Pro", "currency": "USD", "amount": "20.00"}
    )
    await stack.post(f"/v1/accounts/{account['id']}/subscriptions", tenant, {"plan": "pro"})
    attempts = f"/v1/accounts/{account['id']}/payment-attempts"

    async def declined() -> bool:
        found = await (await stack.api.get(attempts, headers=tenant.admin)).json()
        return [a["status"] for a in found["data"]] == ["declined"]

    await stack.eventually(declined)
    # The declined card is removed although a charge names it; the spare becomes the default
    # and what is owed is charged to it at once.
    gone = await stack.api.delete(f"/v1/payment-methods/{declining['id']}", headers=tenant.admin)
    assert gone.status == 204
    listed = await (await stack.api.get(methods, headers=tenant.admin)).json()
    assert [m["id"] for m in listed["data"]] == [spare["id"]]
    made = await stack.api.post(f"/v1/payment-methods/{spare['id']}/default", headers=tenant.admin)
    assert made.status == 200
    assert (await made.json())["default"] is True

    async def paid() -> bool:
        found = await (
            await stack.api.get(f"/v1/accounts/{account['id']}", headers=tenant.admin)
        ).json()
        return bool(found["balance_due"] == "0.00" and found["standing"] == "active")

    await stack.eventually(paid)
    again = await stack.api.delete(f"/v1/payment-methods/{declining['id']}", headers=tenant.admin)
    assert again.status == 404
