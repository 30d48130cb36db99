"""Money Stripe gives back after Tollgate collected it: a refund made in Stripe's dashboard
and a dispute reach the ledger through Stripe's webhooks, once each, however often Stripe
tells of them; a refund Tollgate made itself is not counted again when Stripe reports it.
A refund keeps the invoice paid (a credit note); a dispute re-opens it and the disputed
card is not charged again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import stripe

from tests.integration.api.test_stripe import (  # the same localstripe and tenant set-up
    _call,
    _card,
    _signed,
    localstripe,
    stripe_client,
    worker_env,
)
from tests.integration.conftest import Stack, Tenant

__all__ = ["localstripe", "stripe_client", "worker_env"]  # fixtures this module uses

SECRET = "whsec_tenantsigning456"


async def _post(stack: Stack, tenant: Tenant, event: dict[str, Any]) -> tuple[int, Any]:
    body, signature = _signed(SECRET, event)
    response = await stack.api.post(
        f"/v1/stripe/webhooks/{tenant.id}",
        data=body,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
    )
    return response.status, await response.json()


Balance = Callable[[str], Awaitable[bool]]


async def _paid_by_card(
    stack: Stack, stripe_client: stripe.StripeClient, user: str
) -> tuple[Tenant, str, Balance]:
    """A tenant on Stripe and a customer whose first invoice (Pro, 49.00) its card paid; a
    check of the customer's balance."""
    tenant = await stack.new_tenant()
    keys = {"stripe_secret_key": "sk_test_tenantkey1234", "stripe_webhook_secret": SECRET}
    await _call(stack, tenant, "PATCH", "/v1/tenant", keys)
    account = await stack.customer(tenant, user)
    token = await _card(stripe_client, "4242424242424242")
    await _call(stack, tenant, "POST", f"/v1/accounts/{account}/payment-methods", {"token": token})

    async def balance(expected: str) -> bool:
        found = await _call(stack, tenant, "GET", f"/v1/accounts/{account}")
        return bool(found["balance_due"] == expected)

    await stack.eventually(lambda: balance("0.00"), within=15)
    return tenant, account, balance


def _event(event_id: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": event_id, "object": "event", "type": kind, "data": {"object": obj}}


async def test_refunds_keep_the_invoice_paid_and_a_dispute_reopens_it_uncharged(
    stack: Stack, stripe_client: stripe.StripeClient
) -> None:
    tenant, account, balance = await _paid_by_card(stack, stripe_client, "fay")
    [payment] = (await _call(stack, tenant, "GET", f"/v1/accounts/{account}/payments"))["data"]
    intent = payment["reference"]
    assert intent.startswith("pi_")

    # 10.00 refunded through Tollgate (which asks Stripe); Stripe then reports its total
    await _call(stack, tenant, "POST", f"/v1/payments/{payment['id']}/refunds",
                {"amount": "10.00", "reason": "goodwill"})  # fmt: skip
    charge = {"id": "ch_1Fay", "object": "charge", "payment_intent": intent, "amount": 4900,
              "amount_refunded": 1000, "metadata": {}}  # fmt: skip
    reported = await _post(stack, tenant, _event("evt_1", "charge.refunded", charge))
    assert reported == (200, {"received": True, "duplicate": True, "applied": False})
    assert await balance("0.00")  # a goodwill refund: a credit note, nothing owed again

    # 5.00 more refunded in Stripe's dashboard: the new total is 15.00, of which 5.00 is new
    await stripe_client.v1.refunds.create_async({"payment_intent": intent, "amount": 500})
    charge["amount_refunded"] = 1500
    assert (await _post(stack, tenant, _event("evt_2", "charge.refunded", charge)))[1][
        "applied"
    ] is True
    again = await _post(stack, tenant, _event("evt_2", "charge.refunded", charge))
    assert again[1]["duplicate"] is True
    assert await balance("0.00")

    # the card holder disputes the rest: taken back at once, the invoice owes it again
    dispute = {"id": "dp_1Fay", "object": "dispute", "payment_intent": intent, "charge": "ch_1Fay",
               "amount": 3400, "reason": "fraudulent", "status": "needs_response"}  # fmt: skip
    assert (await _post(stack, tenant, _event("evt_3", "charge.dispute.created", dispute)))[1][
        "applied"
    ] is True
    assert (await _post(stack, tenant, _event("evt_3", "charge.dispute.created", dispute)))[1][
        "duplicate"
    ] is True
    assert await balance("34.00")
    # the worker does what is due: the disputed card is not charged again
    await stack.api.post("/v1/test/settle", headers=stack.operator)
    attempts = await _call(stack, tenant, "GET", f"/v1/accounts/{account}/payment-attempts")
    assert [a["status"] for a in attempts["data"]] == ["succeeded"]
    assert await balance("34.00")
    events = (await _call(stack, tenant, "GET", "/v1/events?type=payment.refunded"))["data"]
    reasons = [e["data"]["changes"]["reason"][1] for e in reversed(events)]
    assert reasons == ["goodwill", "refunded in Stripe", "disputed in Stripe (fraudulent)"]

    # the tenant wins the dispute: the 34.00 comes back, once
    won = {**dispute, "status": "won"}
    assert (await _post(stack, tenant, _event("evt_4", "charge.dispute.closed", won)))[1][
        "applied"
    ] is True
    assert (await _post(stack, tenant, _event("evt_5", "charge.dispute.closed", won)))[1][
        "duplicate"
    ] is True
    assert await balance("0.00")
    payments = (await _call(stack, tenant, "GET", f"/v1/accounts/{account}/payments"))["data"]
    assert sorted(p["amount"] for p in payments) == ["34.00", "49.00"]


async def test_a_disputed_card_is_charged_again_only_once_replaced(
    stack: Stack, stripe_client: stripe.StripeClient
) -> None:
    tenant, account, balance = await _paid_by_card(stack, stripe_client, "gus")
    [payment] = (await _call(stack, tenant, "GET", f"/v1/accounts/{account}/payments"))["data"]
    dispute = {"id": "dp_1Gus", "object": "dispute", "payment_intent": payment["reference"],
               "amount": 4900, "reason": "fraudulent", "status": "needs_response"}  # fmt: skip
    assert (await _post(stack, tenant, _event("evt_9", "charge.dispute.created", dispute)))[1][
        "applied"
    ] is True
    await stack.api.post("/v1/test/settle", headers=stack.operator)
    assert await balance("49.00")  # owed, and the disputed card left alone
    # the customer gives a new card: it is charged what is owed
    other = await _card(stripe_client, "5555555555554444")
    await _call(stack, tenant, "POST", f"/v1/accounts/{account}/payment-methods",
                {"token": other, "default": True})  # fmt: skip
    await stack.eventually(lambda: balance("0.00"), within=15)
    attempts = await _call(stack, tenant, "GET", f"/v1/accounts/{account}/payment-attempts")
    assert [a["status"] for a in attempts["data"]] == ["succeeded", "succeeded"]


async def test_a_refund_of_a_charge_not_yet_applied_is_asked_again(stack: Stack) -> None:
    """Stripe's refund can overtake the charge's own answer: a charge Tollgate made (its key
    in the metadata) is answered 409, so Stripe sends it again; anyone else's is only
    acknowledged."""
    tenant = await stack.new_tenant()
    await _call(stack, tenant, "PATCH", "/v1/tenant", {"stripe_webhook_secret": SECRET})
    ours = {"id": "ch_2", "object": "charge", "payment_intent": "pi_notyet", "amount": 4900,
            "amount_refunded": 4900, "metadata": {"tollgate_key": "col_acc_x_1"}}  # fmt: skip
    status, problem = await _post(stack, tenant, _event("evt_6", "charge.refunded", ours))
    assert (status, problem["status"]) == (409, 409)
    theirs = {**ours, "metadata": {}}
    assert await _post(stack, tenant, _event("evt_7", "charge.refunded", theirs)) == (
        200, {"received": True, "duplicate": False, "applied": False}
    )  # fmt: skip


async def test_an_old_payment_is_refunded_however_many_charges_came_after(
    stack: Stack, stripe_client: stripe.StripeClient
) -> None:
    tenant, account, balance = await _paid_by_card(stack, stripe_client, "hal")
    [payment] = (await _call(stack, tenant, "GET", f"/v1/accounts/{account}/payments"))["data"]
    for _ in range(101):  # a busy Stripe account: more than a page of newer PaymentIntents
        await stripe_client.v1.payment_intents.create_async({"amount": 100, "currency": "usd"})
    refund = await _call(stack, tenant, "POST", f"/v1/payments/{payment['id']}/refunds",
                         {"amount": "10.00", "reason": "goodwill"})  # fmt: skip
    assert refund["payment"]["refunded"] == "10.00"
    assert await balance("0.00")


async def test_a_dispute_the_ledger_cannot_take_parks_the_account_with_what_to_do(
    stack: Stack,
) -> None:
    """A payment of 100.00 paid the 49.00 invoice and left 51.00 of credit, since spent on a
    one-off charge: a dispute of all 100.00 cannot be traced to what the payment still
    holds. It is not acknowledged and dropped: the account is parked (an event says so)
    with what to record by hand, and its card is charged no more."""
    tenant = await stack.new_tenant()
    await _call(stack, tenant, "PATCH", "/v1/tenant", {"stripe_webhook_secret": SECRET})
    account = await stack.customer(tenant, "hal")
    await _call(stack, tenant, "PATCH", f"/v1/accounts/{account}", {"collection": "manual"})
    paid = {"amount": "100.00", "currency": "USD", "method": "other", "reference": "pi_3Hal"}
    await _call(stack, tenant, "POST", f"/v1/accounts/{account}/payments", paid)
    charge = {"amount": "51.00", "currency": "USD", "description": "Onboarding"}
    await _call(stack, tenant, "POST", f"/v1/accounts/{account}/charges", charge)
    found = await _call(stack, tenant, "GET", f"/v1/accounts/{account}")
    assert (found["balance_due"], found["credit"]) == ("0.00", "0.00")

    dispute = {"id": "dp_1Hal", "object": "dispute", "payment_intent": "pi_3Hal",
               "amount": 10000, "reason": "fraudulent", "status": "needs_response"}  # fmt: skip
    status, answer = await _post(stack, tenant, _event("evt_h1", "charge.dispute.created", dispute))
    assert (status, answer["applied"]) == (200, False)
    found = await _call(stack, tenant, "GET", f"/v1/accounts/{account}")
    assert found["parked"]["job"] == "stripe"
    assert "dp_1Hal" in found["parked"]["error"]
    assert "record the difference by hand" in found["parked"]["error"]
    events = (await _call(stack, tenant, "GET", "/v1/events?type=account.parked"))["data"]
    assert [e["account_id"] for e in events] == [account]
    dunning = await _call(stack, tenant, "GET", f"/v1/accounts/{account}/dunning")
    assert dunning["hard_declined"] is True  # the disputed card is charged no more
