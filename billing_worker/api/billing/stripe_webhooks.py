"""Stripe's webhooks for a tenant's Stripe account.

A PaymentIntent that succeeded or failed after the collector's call returned (a bank debit
still processing, a timeout) is settled through the payment queue, like the collector's own
answer -- whichever arrives second is a duplicate. Refunds made in Stripe's dashboard and
disputes are brought into the ledger at once (``payments.stripe_reversals``).
"""

from __future__ import annotations

from typing import Any

import stripe
from aiohttp import web

from billing_worker.api.billing.payments import store_provider_event
from billing_worker.api.http import schemas
from billing_worker.api.http.appkeys import CLOCK, OUTBOX_WAKE, PAYMENTS_WAKE, PROVIDERS, SESSIONS
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, read_limited, respond
from billing_worker.jobs.catch_up import real_time
from billing_worker.notifications.signing import TOLERANCE_SECONDS
from billing_worker.payments.payment_queue import FAILED, SUCCEEDED
from billing_worker.payments.stripe_provider import outcome_of
from billing_worker.payments.stripe_reversals import (
    Outcome,
    apply_reversal,
    park_unapplied_dispute,
)
from billing_worker.services import payments
from billing_worker.services.errors import BadSignature, Conflict

#: The Stripe events Tollgate acts on, and what each says of a charge.
_CHARGES = {"payment_intent.succeeded": SUCCEEDED, "payment_intent.payment_failed": FAILED}
#: Money given back after it was collected: a Charge's refunds, a Dispute opened or closed.
_REVERSALS = frozenset(("charge.refunded", "charge.dispute.created", "charge.dispute.closed"))
_UNKNOWN_TENANT = "whsec_unknowntenant0"


def _verified(raw: bytes, header: str, secret: str | None) -> dict[str, Any]:
    try:
        # an unknown tenant fails like a bad signature: no oracle for tenant ids
        event = stripe.Webhook.construct_event(
            raw.decode(), header, secret or _UNKNOWN_TENANT, tolerance=TOLERANCE_SECONDS
        )
    except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError) as exc:
        raise BadSignature("the Stripe-Signature does not match the body") from exc
    if secret is None:
        raise BadSignature("the Stripe-Signature does not match the body")
    return dict(event.to_dict())


@router.route(
    "POST",
    "/v1/stripe/webhooks/{tenant_id}",
    summary="Events from the tenant's Stripe account (payment_intent.succeeded and "
    ".payment_failed, charge.refunded, charge.dispute.created and .closed act; others are "
    "acknowledged), verified with Stripe-Signature and the tenant's stripe_webhook_secret",
    role=Role.PUBLIC,
    raw_body={"application/json": {"schema": {"type": "object"}}},
    response=schemas.ProviderEventAck,
    errors=(401, 409),
)
async def stripe_webhook(request: web.Request) -> web.Response:
    raw = await read_limited(request)
    tenant_id = request.match_info["tenant_id"]
    async with request.app[SESSIONS]() as session:
        stored = await payments.stripe_webhook_secret(session, tenant_id)
    secret = request.app[PROVIDERS].resolve(stored) if stored else None
    event = _verified(raw, request.headers.get("Stripe-Signature", ""), secret)
    if event.get("type") in _REVERSALS:
        return await _reversal(request, tenant_id, event)
    intent = event.get("data", {}).get("object", {})
    key = (intent.get("metadata") or {}).get("tollgate_key")
    if event.get("type") not in _CHARGES or not key:
        # not a charge Tollgate made, or not one it acts on: acknowledged, so Stripe stops
        return respond(schemas.ProviderEventAck(received=True, duplicate=False, applied=False))
    result = outcome_of(intent)
    converted = schemas.ProviderEvent(
        id=str(event["id"]),
        type=_CHARGES[str(event["type"])],  # type: ignore[arg-type]
        data=schemas.ProviderEventData(
            idempotency_key=str(key),
            reason=result.reason,
            hard=result.hard,
            reference=result.reference,
        ),
    )
    ack = await store_provider_event(request, tenant_id, converted)
    request.app[PAYMENTS_WAKE].set()
    return respond(ack)


async def _reversal(request: web.Request, tenant_id: str, event: dict[str, Any]) -> web.Response:
    obj = event.get("data", {}).get("object", {})
    async with request.app[SESSIONS]() as session, session.begin():
        outcome = await apply_reversal(
            session, tenant_id, str(event["type"]), obj, real_time(request.app[CLOCK])
        )
    if outcome is Outcome.UNKNOWN and (obj.get("metadata") or {}).get("tollgate_key"):
        # a charge Tollgate made whose answer is not applied yet (a refund can overtake
        # it): Stripe sends the event again later
        raise Conflict("no payment of this tenant was collected by that PaymentIntent yet")
    if outcome is Outcome.REFUSED and event["type"] == "charge.dispute.created":
        async with request.app[SESSIONS]() as session, session.begin():
            now = request.app[CLOCK].now()
            await park_unapplied_dispute(session, tenant_id, obj, now)
    request.app[OUTBOX_WAKE].set()
    return respond(
        schemas.ProviderEventAck(
            received=True,
            duplicate=outcome is Outcome.DUPLICATE,
            applied=outcome is Outcome.APPLIED,
        )
    )
