"""Payments: received (check, wire), collected (attempts), refunded; invoices written off;
and the endpoint payment providers post their events to."""

from __future__ import annotations

import time

import msgspec
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.api.customers.accounts import tenant_account
from billing_worker.api.http import schemas
from billing_worker.api.http.appkeys import (
    CLOCK,
    OUTBOX_WAKE,
    PAYMENTS_WAKE,
    PROVIDERS,
    REFUND_TURNS,
    SESSIONS,
)
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, decode, read_limited, respond
from billing_worker.api.http.views import account_out, attempt_view, payment_view
from billing_worker.db.models import Account, Payment, Refund
from billing_worker.jobs.catch_up import real_time
from billing_worker.notifications.signing import HEADER, SignatureError, verify
from billing_worker.payments.collection import provider_named
from billing_worker.services import payments
from billing_worker.services.errors import (
    BadSignature,
    InvalidRequest,
    NotFound,
)
from shared.money import Money

ACCOUNT = "/v1/accounts/{account_id}"


@router.route(
    "POST",
    ACCOUNT + "/payments",
    summary="Record a payment received (check, wire, ...): it pays the oldest invoices first, "
    "surplus is credit",
    role=Role.TENANT,
    request=schemas.PaymentCreate,
    response=schemas.PaymentOut,
    status=201,
    errors=(404,),
)
async def create_payment(request: web.Request) -> web.Response:
    body = await decode(request, schemas.PaymentCreate, refuse_card_data=True)
    async with request.app[SESSIONS]() as session, session.begin():
        account, payment = await payments.record_payment(
            session, tenant_of(request), request.match_info["account_id"],
            real_time(request.app[CLOCK]), body,
        )  # fmt: skip
        out = payment_view(payment, await account_out(session, account))
    request.app[OUTBOX_WAKE].set()
    return respond(out, 201)


@router.route(
    "GET",
    ACCOUNT + "/payments",
    summary="The account's payments, newest first",
    role=Role.TENANT,
    response=schemas.PaymentList,
    errors=(404,),
)
async def list_payments(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        account = await tenant_account(session, request)
        listed = await payments.payments_of(session, account)
        view = await account_out(session, account)
    return respond(schemas.PaymentList(data=[payment_view(p, view) for p in listed]))


@router.route(
    "GET",
    ACCOUNT + "/payment-attempts",
    summary="Charges the collector made for the account, newest first, with their outcome",
    role=Role.TENANT,
    response=schemas.AttemptList,
    errors=(404,),
)
async def list_attempts(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        attempts = await payments.attempts_of(session, await tenant_account(session, request))
    return respond(schemas.AttemptList(data=[attempt_view(a) for a in attempts]))


@router.route(
    "POST",
    "/v1/payments/{payment_id}/refunds",
    summary="Refund (part of) a payment: the credit it left first, then what it paid, with a "
    "credit note (the invoice stays paid) or, with adjust false, re-opening it",
    role=Role.TENANT,
    request=schemas.RefundCreate,
    response=schemas.RefundOut,
    status=201,
    errors=(404, 409),
)
async def create_refund(request: web.Request) -> web.Response:
    body = await decode(request, schemas.RefundCreate)

    async def view(
        session: AsyncSession, account: Account, payment: Payment, refund: Refund, amount: Money
    ) -> schemas.RefundOut:
        return schemas.RefundOut(
            id=refund.id,
            payment_id=payment.id,
            amount=amount.format(),
            reason=refund.reason,
            created_at=refund.created_at,
            adjusted=body.adjust,
            payment=payment_view(payment, await account_out(session, account)),
        )

    out = await payments.refund(
        request.app[SESSIONS], request.app[PROVIDERS], request.app[REFUND_TURNS],
        request.app[CLOCK], tenant_of(request), request.match_info["payment_id"], body, view,
    )  # fmt: skip
    request.app[OUTBOX_WAKE].set()
    return respond(out, 201)


@router.route(
    "POST",
    "/v1/providers/{provider}/webhooks/{tenant_id}",
    summary="A payment provider's event, signed with the tenant's provider_webhook_secret "
    "(Tollgate-Signature: t=<unix>,v1=<HMAC-SHA256 of '<t>.<raw body>'>)",
    role=Role.PUBLIC,
    request=schemas.ProviderEvent,
    response=schemas.ProviderEventAck,
    errors=(401,),
)
async def provider_webhook(request: web.Request) -> web.Response:
    raw = await read_limited(request)
    tenant_id = request.match_info["tenant_id"]
    async with request.app[SESSIONS]() as session:
        tenant = await payments.webhook_tenant(session, tenant_id)
    secret = tenant.provider_webhook_secret if tenant else None
    try:
        # An unknown tenant fails like a bad signature: no oracle for tenant ids.
        verify(secret or "unknown-tenant", request.headers.get(HEADER), raw, time.time())
        if tenant is None or secret is None:
            raise SignatureError("the signature does not match the body")
    except SignatureError as exc:
        raise BadSignature(str(exc)) from exc
    try:
        event = msgspec.json.decode(raw, type=schemas.ProviderEvent)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InvalidRequest.field("body", str(exc)) from exc
    if provider_named(request.app[PROVIDERS].fixed, request.match_info["provider"]) is None:
        raise NotFound(f"no payment provider {request.match_info['provider']!r}")
    ack = await store_provider_event(request, tenant_id, event)
    request.app[PAYMENTS_WAKE].set()
    return respond(ack)


async def store_provider_event(
    request: web.Request, tenant_id: str, event: schemas.ProviderEvent
) -> schemas.ProviderEventAck:
    _ours, fresh = await payments.store_provider_event(
        request.app[SESSIONS], tenant_id, request.app[CLOCK].now(), event_id=event.id,
        event_type=event.type, data=event.data,
    )  # fmt: skip
    return schemas.ProviderEventAck(received=True, duplicate=not fresh, applied=False)
