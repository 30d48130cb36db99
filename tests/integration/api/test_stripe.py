"""Stripe as a tenant's payment provider, against localstripe (a stateful fake of Stripe's
API on a free port) with Stripe's documented test cards: a card that pays, and one that
attaches but is declined when charged. What localstripe does not model -- Stripe's
idempotency keys and its decline codes -- is checked against recorded Stripe answers."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import stripe
from aiohttp import web

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.db.models import PaymentAttempt
from billing_worker.ids import new_id
from billing_worker.payments.providers import Outcome
from billing_worker.payments.stripe_provider import StripeProvider
from shared.money import Money
from tests.integration.conftest import Stack, Tenant
from tollgate.redis_server import free_port, wait_for_port


@pytest.fixture(scope="module")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = (tmp_path_factory.mktemp("localstripe") / "localstripe.log").open("wb")
    server = subprocess.Popen(
        # --from-scratch: localstripe keeps its store in /tmp/localstripe.pickle, one file for
        # every instance; loading it at start read another worker's state, or a half-written
        # file (and failed to start)
        [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
        stdout=log,
        stderr=log,
    )
    try:
        wait_for_port(port, timeout=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


@pytest.fixture
def worker_env(localstripe: str) -> dict[str, str]:
    return {"TOLLGATE_STRIPE_API_BASE": localstripe}


@pytest.fixture
async def stripe_client(localstripe: str) -> AsyncIterator[stripe.StripeClient]:
    """What the tenant's own checkout page does with Stripe.js: a customer and a card."""
    http = stripe.AIOHTTPClient()
    yield stripe.StripeClient(
        "sk_test_tenantkey1234", http_client=http, base_addresses={"api": localstripe}
    )
    await http.close_async()  # type: ignore[no-untyped-call]


async def _card(client: stripe.StripeClient, number: str) -> str:
    customer = await client.v1.customers.create_async({"email": "ap@initech.example"})
    method = await client.v1.payment_methods.create_async(
        {
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    await client.v1.payment_methods.attach_async(method.id, {"customer": customer.id})
    return f"{customer.id}/{method.id}"


async def _call(stack: Stack, tenant: Tenant, method: str, path: str, body: Any = None) -> Any:
    response = await stack.api.request(method, path, json=body, headers=tenant.admin)
    assert response.status < 300, (path, response.status, await response.text())
    return await response.json()


async def test_a_tenants_stripe_customers_are_charged_off_session(
    stack: Stack, stripe_client: stripe.StripeClient
) -> None:
    tenant = await stack.new_tenant()
    configured = await _call(stack, tenant, "PATCH", "/v1/tenant",
                             {"stripe_secret_key": "sk_test_tenantkey1234"})  # fmt: skip
    assert configured["stripe_configured"] is True
    assert "sk_test_tenantkey1234" not in str(await _call(stack, tenant, "GET", "/v1/tenant"))
    audit = await _call(stack, tenant, "GET", "/v1/audit?object_type=tenant&limit=1")
    assert audit["data"][0]["changes"]["stripe_secret_key"] == [None, "[redacted]"]

    paying = await stack.customer(tenant, "ann")  # Pro, 49.00, invoiced at once
    token = await _card(stripe_client, "4242424242424242")
    method = await _call(stack, tenant, "POST", f"/v1/accounts/{paying}/payment-methods",
                         {"token": token})  # fmt: skip
    assert method["provider"] == "stripe"

    async def paid() -> bool:
        account = await _call(stack, tenant, "GET", f"/v1/accounts/{paying}")
        return bool(account["balance_due"] == "0.00")

    await stack.eventually(paid, within=15)
    attempt = (await _call(stack, tenant, "GET", f"/v1/accounts/{paying}/payment-attempts"))[
        "data"
    ][0]
    assert (attempt["status"], attempt["amount"]) == ("succeeded", "49.00")
    # the PaymentIntent Stripe holds (the payment's reference, however many other tests'
    # intents this localstripe holds): the amount in cents, tagged with the attempt's key
    [payment] = (await _call(stack, tenant, "GET", f"/v1/accounts/{paying}/payments"))["data"]
    intent = await stripe_client.v1.payment_intents.retrieve_async(payment["reference"])
    assert intent.metadata.to_dict().get("tollgate_key") == attempt["idempotency_key"]
    assert (intent.amount, intent.currency, intent.status) == (4900, "usd", "succeeded")
    assert intent.customer == token.split("/")[0]

    # a card Stripe attaches but declines when charged: a soft decline, the ladder retries
    declining = await stack.customer(tenant, "bob")
    bad = await _card(stripe_client, "4000000000000341")
    await _call(stack, tenant, "POST", f"/v1/accounts/{declining}/payment-methods", {"token": bad})

    async def declined() -> bool:
        found = await _call(stack, tenant, "GET", f"/v1/accounts/{declining}/payment-attempts")
        return bool(found["data"]) and found["data"][0]["status"] == "declined"

    await stack.eventually(declined, within=15)
    attempt = (await _call(stack, tenant, "GET", f"/v1/accounts/{declining}/payment-attempts"))[
        "data"
    ][0]
    assert (attempt["reason"], attempt["hard"]) == ("card_declined", False)
    account = await _call(stack, tenant, "GET", f"/v1/accounts/{declining}")
    assert account["balance_due"] == "49.00"
    assert account["standing"] == "grace"


async def test_stripe_tokens_need_the_tenants_key_and_keys_are_checked(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await stack.new_tenant()
    account = await stack.customer(tenant, "cat")
    refused = await stack.api.post(
        f"/v1/accounts/{account}/payment-methods",
        json={"token": "cus_Abc123/pm_Def456"},
        headers=tenant.admin,
    )
    assert refused.status == 422
    assert (await refused.json())["errors"][0]["field"] == "token"
    bad_key = await stack.api.patch(
        "/v1/tenant", json={"stripe_secret_key": "pk_live_publishable"}, headers=tenant.admin
    )
    assert bad_key.status == 422
    assert (await bad_key.json())["errors"][0]["field"] == "stripe_secret_key"
    missing = await stack.api.patch(
        "/v1/tenant", json={"stripe_secret_key": "env:ACME_STRIPE_KEY"}, headers=tenant.admin
    )
    assert missing.status == 422  # a reference to nothing would fail at the first charge
    assert "ACME_STRIPE_KEY" in (await missing.json())["errors"][0]["reason"]
    monkeypatch.setenv("ACME_STRIPE_KEY", "sk_test_fromtheenvironment")
    by_reference = await _call(stack, tenant, "PATCH", "/v1/tenant",
                               {"stripe_secret_key": "env:ACME_STRIPE_KEY"})  # fmt: skip
    assert by_reference["stripe_configured"] is True


def _signed(secret: str, event: dict[str, Any], at: int | None = None) -> tuple[bytes, str]:
    """A body and its Stripe-Signature, as Stripe signs its webhooks."""
    body = orjson.dumps(event)
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={at},v1={digest}"


async def test_stripes_webhook_settles_a_charge_whose_answer_was_lost(
    stack: Stack, database_url: str
) -> None:
    """The collector stored its attempt and called Stripe, but the answer never came (a
    crash, a timeout): Stripe's payment_intent.succeeded settles it, once, however often
    Stripe sends it; a forged or stale signature, or another tenant's, is refused alike."""
    tenant = await stack.new_tenant()
    secret = "whsec_tenantsigning123"
    configured = await _call(stack, tenant, "PATCH", "/v1/tenant",
                             {"stripe_webhook_secret": secret})  # fmt: skip
    assert configured["stripe_webhooks_configured"] is True
    account = await stack.customer(tenant, "dan")  # owes 49.00
    await _call(stack, tenant, "PATCH", f"/v1/accounts/{account}", {"collection": "manual"})
    card = await _call(stack, tenant, "POST", f"/v1/accounts/{account}/payment-methods",
                       {"token": "tok_sandbox_success"})  # fmt: skip
    key = f"col_{account}_lost_{card['id']}"
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            now = datetime.now(UTC)
            session.add(
                PaymentAttempt(
                    id=new_id("att"), tenant_id=tenant.id, account_id=account,
                    payment_method_id=card["id"], idempotency_key=key, amount_minor=4900,
                    currency="USD", status="pending", hard=False, created_at=now, updated_at=now,
                )
            )  # fmt: skip
    finally:
        await engine.dispose()
    event = {
        "id": "evt_3Lost", "object": "event", "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_3Lost", "object": "payment_intent", "status": "succeeded",
                            "amount": 4900, "currency": "usd",
                            "metadata": {"tollgate_key": key}}},
    }  # fmt: skip
    path = f"/v1/stripe/webhooks/{tenant.id}"

    async def post(body: bytes, signature: str, where: str = path) -> tuple[int, Any]:
        response = await stack.api.post(
            where, data=body, headers={"Stripe-Signature": signature,
                                       "Content-Type": "application/json"}
        )  # fmt: skip
        return response.status, await response.json()

    body, signature = _signed(secret, event)
    forged = await post(body, _signed("whsec_somebodyelse99", event)[1])
    stale = await post(body, _signed(secret, event, at=int(time.time()) - 3600)[1])
    elsewhere = await post(body, signature, "/v1/stripe/webhooks/ten_doesnotexist")
    assert forged[0] == stale[0] == elsewhere[0] == 401
    assert forged[1]["detail"] == elsewhere[1]["detail"]  # no oracle for tenant ids

    first, again = await post(body, signature), await post(body, signature)
    assert first == (200, {"received": True, "duplicate": False, "applied": False})
    assert again[1]["duplicate"] is True

    async def settled() -> bool:
        found = await _call(stack, tenant, "GET", f"/v1/accounts/{account}")
        return bool(found["balance_due"] == "0.00")

    await stack.eventually(settled, within=10)
    payments = await _call(stack, tenant, "GET", f"/v1/accounts/{account}/payments")
    assert [p["amount"] for p in payments["data"]] == ["49.00"]  # once
    other = {**event, "id": "evt_3Other", "type": "customer.created"}
    body, signature = _signed(secret, other)
    assert (await post(body, signature))[1]["applied"] is False  # acknowledged, not acted on


# -- recorded Stripe answers -------------------------------------------------------------

#: Stripe's 402 answers for cards that decline when charged (from Stripe's API reference
#: and test-card documentation: 4000000000009995, 4000000000009979, 4000000000000069); the
#: error carries the declined PaymentIntent.
_DECLINED = {"id": "pi_3Decl1ned", "object": "payment_intent", "status": "requires_payment_method"}
DECLINES = {
    "insufficient_funds": {"code": "card_declined", "decline_code": "insufficient_funds",
                           "message": "Your card has insufficient funds.", "type": "card_error",
                           "payment_intent": _DECLINED},
    "stolen_card": {"code": "card_declined", "decline_code": "stolen_card",
                    "message": "Your card was declined.", "type": "card_error",
                    "payment_intent": _DECLINED},
    "expired_card": {"code": "expired_card", "message": "Your card has expired.",
                     "type": "card_error", "param": "exp_month", "payment_intent": _DECLINED},
}  # fmt: skip


@pytest.fixture
async def recorded(tmp_path: Path) -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A server answering as Stripe did, keeping each request's idempotency key."""
    seen: list[dict[str, str]] = []

    async def create(request: web.Request) -> web.Response:
        form = dict(await request.post())
        seen.append({"key": request.headers.get("Idempotency-Key", ""), **form})  # type: ignore[dict-item]
        reason = str(form["metadata[tollgate_key]"]).split(":")[0]
        if reason in DECLINES:
            return web.json_response({"error": DECLINES[reason]}, status=402)
        return web.json_response(
            {
                "id": "pi_3Rec0rded",
                "object": "payment_intent",
                "status": "succeeded",
                "amount": int(str(form["amount"])),
                "currency": form["currency"],
                "metadata": {"tollgate_key": form["metadata[tollgate_key]"]},
            }
        )

    async def retrieve(request: web.Request) -> web.Response:
        seen.append({"retrieved": request.match_info["id"]})
        return web.json_response(
            {"id": request.match_info["id"], "object": "payment_intent", "status": "processing",
             "amount": 1234, "currency": "eur", "metadata": {"tollgate_key": "k_processing"}}
        )  # fmt: skip

    app = web.Application()  # no listing: a charge is never looked for among recent ones
    app.router.add_post("/v1/payment_intents", create)
    app.router.add_get("/v1/payment_intents/{id}", retrieve)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


@pytest.mark.parametrize(
    ("scenario", "outcome", "reason", "hard"),
    [
        ("paid", Outcome.SUCCEEDED, None, False),
        ("insufficient_funds", Outcome.DECLINED, "insufficient_funds", False),
        ("stolen_card", Outcome.DECLINED, "stolen_card", True),
        ("expired_card", Outcome.DECLINED, "expired_card", True),
    ],
)
async def test_declines_map_onto_the_ladders_rules_and_the_key_goes_to_stripe(
    recorded: tuple[str, list[dict[str, str]]],
    scenario: str,
    outcome: Outcome,
    reason: str | None,
    hard: bool,
) -> None:
    base, seen = recorded
    http = stripe.AIOHTTPClient()
    try:
        provider = StripeProvider("sk_test_recorded123", http, api_base=base)
        key = f"{scenario}:col_acc_1_inv_1:0_pm_1"
        result = await provider.charge("cus_Rec0rded/pm_Rec0rded", Money.parse("12.34", "EUR"), key)
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
    assert (result.outcome, result.reason, result.hard) == (outcome, reason, hard)
    assert result.reference == ("pi_3Rec0rded" if scenario == "paid" else "pi_3Decl1ned")
    assert seen[0]["key"] == key  # Stripe's Idempotency-Key: a repeat is never a new charge
    assert (seen[0]["amount"], seen[0]["currency"]) == ("1234", "eur")
    assert (seen[0]["confirm"], seen[0]["off_session"]) == ("true", "true")


async def test_a_charge_is_looked_up_by_the_intent_stripe_answered_never_among_recent_ones(
    recorded: tuple[str, list[dict[str, str]]],
) -> None:
    """Without a reference Stripe cannot place a charge but by repeating it under its key
    (the reconciler's call, within the key's 24 hours); with one, the intent is read by id
    however old, and only if it is this charge's."""
    base, seen = recorded
    http = stripe.AIOHTTPClient()
    try:
        provider = StripeProvider("sk_test_recorded123", http, api_base=base)
        assert await provider.lookup("k_processing") is None
        assert seen == []  # nothing listed, nothing charged
        found = await provider.lookup("k_processing", reference="pi_3Pr0cess")
        other = await provider.lookup("k_another", reference="pi_3Pr0cess")
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
    assert found is not None
    assert (found.outcome, found.reason, found.reference) == (
        Outcome.UNKNOWN, "processing", "pi_3Pr0cess",
    )  # fmt: skip
    assert other is None  # another charge's intent is not this one's answer
    assert provider.key_lifetime is not None
    assert provider.key_lifetime < timedelta(hours=24)
