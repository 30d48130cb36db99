"""Stripe as a payment provider, with the official ``stripe`` package.

A payment method is a Stripe customer and one of its PaymentMethods, stored as the token
``cus_…/pm_…`` (ids only: the card itself stays with Stripe). A charge is a PaymentIntent
confirmed off-session, created under Tollgate's idempotency key (Stripe's
``Idempotency-Key``) and tagged with it (``metadata.tollgate_key``). An intent is only ever
found by its id (the reference Stripe answered), never by scanning recent intents: a charge
whose answer was lost is repeated under the same key while Stripe still keeps it (24 hours),
which Stripe answers with the first intent, never a second charge; past that the attempt is
parked for a person to look up (``reconciliation.reconcile``).
Declines map onto Tollgate's rules: a lost, stolen or expired card (or one Stripe calls
fraudulent) is a hard decline, not retried; the others are soft and follow the ladder.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import stripe

from billing_worker.payments.providers import ChargeResult, Outcome
from shared.money import Money

TOKEN = re.compile(r"^(?P<customer>cus_[A-Za-z0-9]{1,100})/(?P<method>pm_[A-Za-z0-9]{1,100})$")
#: Stripe decline codes after which retrying the same card cannot succeed.
HARD = frozenset(
    (
        "lost_card stolen_card expired_card fraudulent pickup_card restricted_card "
        "card_not_supported invalid_account new_account_information_available"
    ).split()
)
#: Stripe keeps an idempotency key for 24 hours; an hour less, for clocks and queues.
KEY_LIFETIME = timedelta(hours=23)


def decline(error: dict[str, Any] | None) -> ChargeResult:
    """A Stripe error object (``error`` of a 402 answer, or a PaymentIntent's
    ``last_payment_error``) as Tollgate's decline."""
    error = error or {}
    code = str(error.get("decline_code") or error.get("code") or "card_declined")
    return ChargeResult(Outcome.DECLINED, code, hard=code in HARD)


def outcome_of(intent: dict[str, Any]) -> ChargeResult:
    """What a PaymentIntent's state says of the charge."""
    status, reference = intent.get("status"), intent.get("id")
    if status == "succeeded":
        return ChargeResult(Outcome.SUCCEEDED, reference=reference)
    if status == "processing":  # a bank debit: its webhook settles it
        return ChargeResult(Outcome.UNKNOWN, "processing", reference=reference)
    if status == "requires_action":  # the bank wants the customer: an off-session decline
        return ChargeResult(Outcome.DECLINED, "authentication_required", reference=reference)
    if status == "canceled":
        return ChargeResult(Outcome.DECLINED, "canceled", reference=reference)
    result = decline(intent.get("last_payment_error"))
    return ChargeResult(result.outcome, result.reason, result.hard, reference)


class StripeProvider:
    """One tenant's Stripe account (its secret key)."""

    name = "stripe"
    key_lifetime: timedelta | None = KEY_LIFETIME

    def __init__(
        self, api_key: str, http: stripe.HTTPClient, *, api_base: str | None = None
    ) -> None:
        bases = {"api": api_base} if api_base else None
        self._client = stripe.StripeClient(
            api_key, http_client=http, base_addresses=bases,  # type: ignore[arg-type]
            max_network_retries=0,
        )  # fmt: skip

    def accepts(self, token: str) -> bool:
        return TOKEN.match(token) is not None

    async def charge(self, token: str, amount: Money, idempotency_key: str) -> ChargeResult:
        parts = TOKEN.match(token)
        if parts is None:
            return ChargeResult(Outcome.DECLINED, "unknown_token", hard=True)
        params: dict[str, Any] = {
            "amount": amount.minor, "currency": amount.currency.lower(),
            "customer": parts["customer"], "payment_method": parts["method"],
            "confirm": True, "off_session": True,
            "metadata": {"tollgate_key": idempotency_key},
        }  # fmt: skip
        try:
            intent = await self._client.v1.payment_intents.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        except stripe.CardError as exc:
            body = exc.json_body if isinstance(exc.json_body, dict) else {}
            error = body.get("error") if isinstance(body.get("error"), dict) else {}
            result = decline(error)
            declined = error.get("payment_intent") if error else None  # the declined intent
            reference = declined.get("id") if isinstance(declined, dict) else None
            return ChargeResult(result.outcome, result.reason, result.hard, reference)
        return outcome_of(dict(intent.to_dict()))

    async def _by_id(self, intent_id: str, idempotency_key: str) -> dict[str, Any] | None:
        """The PaymentIntent stored as a payment's reference, if it is this charge's (made
        under ``idempotency_key``): found however long ago, not in a recent window."""
        try:
            intent = await self._client.v1.payment_intents.retrieve_async(intent_id)
        except stripe.InvalidRequestError:
            return None
        found: dict[str, Any] = intent.to_dict()
        return (
            found if (found.get("metadata") or {}).get("tollgate_key") == idempotency_key else None
        )

    async def lookup(
        self, idempotency_key: str, *, reference: str | None = None
    ) -> ChargeResult | None:
        intent = await self._by_id(reference, idempotency_key) if reference else None
        return None if intent is None else outcome_of(intent)

    async def refund(
        self,
        charge_key: str,
        amount: Money,
        idempotency_key: str,
        *,
        reference: str | None = None,
    ) -> ChargeResult:
        intent = await self._by_id(reference, charge_key) if reference else None
        if intent is None or intent.get("status") != "succeeded":
            return ChargeResult(Outcome.DECLINED, "no_such_charge")
        try:
            refund = await self._client.v1.refunds.create_async(
                {"payment_intent": intent["id"], "amount": amount.minor},
                {"idempotency_key": idempotency_key},
            )
        except stripe.InvalidRequestError as exc:
            return ChargeResult(Outcome.DECLINED, exc.code or "refund_refused")
        if refund.status in ("succeeded", "pending"):
            return ChargeResult(Outcome.SUCCEEDED, reference=refund.id)
        return ChargeResult(Outcome.DECLINED, refund.failure_reason or refund.status)
