"""Payments: received (check, wire), collected (attempts), refunded; invoices written off;
and the endpoint payment providers post their events to."""

from __future__ import annotations

import time
from typing import TypeVar

import msgspec
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.api.customers.accounts import locked_account, tenant_account
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
from billing_worker.db.locking import lock_with_parent
from billing_worker.db.models import (
    WITH_SECRETS,
    Account,
    Invoice,
    Payment,
    PaymentAttempt,
    PaymentEvent,
    PaymentMethod,
    Tenant,
)
from billing_worker.domain.statuses import InvoiceStatus
from billing_worker.ids import new_id
from billing_worker.invoicing.ledger import RefundError
from billing_worker.invoicing.refunds import check_refund, refund_payment
from billing_worker.jobs.catch_up import real_time
from billing_worker.notifications.signing import HEADER, SignatureError, verify
from billing_worker.payments.collection import provider_named
from billing_worker.payments.payment_queue import (
    RECEIVED,
    apply_event,
    charge_event,
    enqueue,
)
from billing_worker.payments.providers import Outcome, PaymentProvider
from billing_worker.services.errors import (
    BadSignature,
    Conflict,
    FieldError,
    InvalidRequest,
    NotFound,
)
from billing_worker.standing.entitlements import refresh_family
from shared.money import Money, MoneyError

ACCOUNT = "/v1/accounts/{account_id}"


def parse_amount(text: str, currency: str, field: str = "amount") -> Money:
    """A positive amount in ``currency``, or a 422 naming ``field``."""
    try:
        amount = Money.parse(text, currency)
    except MoneyError as exc:
        raise InvalidRequest.field(field, str(exc)) from exc
    if not amount.is_positive():
        raise InvalidRequest.field(field, "must be greater than zero")
    return amount


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
    real = real_time(request.app[CLOCK])
    now = real.now
    async with request.app[SESSIONS]() as session, session.begin():
        tenant, account = await locked_account(session, request)
        if body.currency != account.currency:
            raise InvalidRequest.field(
                "currency", f"the account pays in {account.currency}, not {body.currency}"
            )
        amount = parse_amount(body.amount, body.currency)
        await _check_named(session, account, body.invoices)
        event = PaymentEvent(
            tenant_id=tenant.id,
            account_id=account.id,
            key=f"manual:{new_id('pay')}",
            source="manual",
            type=RECEIVED,
            amount_minor=amount.minor,
            currency=amount.currency,
            method=body.method,
            reference=body.reference,
            hard=False,
            occurred_at=now,
            received_at=now,
        )
        await enqueue(session, event)
        # queued and applied in one transaction, to the invoices it names first
        await apply_event(session, event, now, real=real, pays_first=body.invoices)
        payment = await session.get(Payment, event.payment_id)
        assert payment is not None
        out = payment_view(payment, await account_out(session, account))
    request.app[OUTBOX_WAKE].set()
    return respond(out, 201)


async def _check_named(session: AsyncSession, account: Account, named: list[str]) -> None:
    """Each invoice a payment names is one of this account's, open; else 422 by path."""
    if not named:
        return
    found = {
        invoice.id: invoice
        for invoice in await session.scalars(
            select(Invoice).where(
                Invoice.tenant_id == account.tenant_id,
                Invoice.account_id == account.id,
                Invoice.id.in_(named),
            )
        )
    }
    problems = []
    for n, invoice_id in enumerate(named):
        invoice = found.get(invoice_id)
        if invoice is None:
            problems.append(
                FieldError(f"invoices[{n}]", f"no invoice {invoice_id!r} of this account")
            )
        elif invoice.status != InvoiceStatus.OPEN:
            problems.append(
                FieldError(f"invoices[{n}]", f"{invoice_id} is {invoice.status}, not open")
            )
    if len(set(named)) < len(named):
        problems.append(FieldError("invoices", "names an invoice more than once"))
    if problems:
        raise InvalidRequest.fields(problems)


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
        payments = (
            await session.scalars(
                select(Payment)
                .where(Payment.tenant_id == account.tenant_id, Payment.account_id == account.id)
                .order_by(Payment.received_at.desc(), Payment.id)
                .limit(500)
            )
        ).all()
        view = await account_out(session, account)
    return respond(schemas.PaymentList(data=[payment_view(p, view) for p in payments]))


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
        account = await tenant_account(session, request)
        attempts = (
            await session.scalars(
                select(PaymentAttempt)
                .where(
                    PaymentAttempt.tenant_id == account.tenant_id,
                    PaymentAttempt.account_id == account.id,
                )
                .order_by(PaymentAttempt.created_at.desc(), PaymentAttempt.id)
                .limit(500)
            )
        ).all()
    return respond(schemas.AttemptList(data=[attempt_view(a) for a in attempts]))


Owned = TypeVar("Owned", Payment, Invoice)


async def _lock_owned(
    session: AsyncSession, request: web.Request, model: type[Owned], param: str
) -> tuple[Tenant, Account, Owned]:
    """The path's payment or invoice, if the calling tenant's, locked after its account."""
    tenant_id, row_id = tenant_of(request), request.match_info[param]
    found = await session.scalar(
        select(model).where(model.tenant_id == tenant_id, model.id == row_id)
    )
    if found is None:
        raise NotFound(f"no {param.removesuffix('_id')} {row_id!r}")
    account = await lock_with_parent(session, tenant_id, found.account_id)
    await session.refresh(found, with_for_update=True)
    tenant = await session.get(Tenant, tenant_id)
    if account is None or tenant is None:
        raise NotFound(f"no {param.removesuffix('_id')} {row_id!r}")
    return tenant, account, found


async def _card_of(
    request: web.Request, session: AsyncSession, payment: Payment
) -> tuple[PaymentProvider, str] | None:
    """The provider and charge key a collected payment's money goes back through; None for
    a payment received offline (the tenant gives it back the same way)."""
    attempt_key = await session.scalar(
        select(PaymentEvent.attempt_key).where(
            PaymentEvent.tenant_id == payment.tenant_id, PaymentEvent.payment_id == payment.id
        )
    )
    if attempt_key is None:
        return None
    provider_name = await session.scalar(
        select(PaymentMethod.provider)
        .join(PaymentAttempt, PaymentAttempt.payment_method_id == PaymentMethod.id)
        .where(PaymentAttempt.idempotency_key == attempt_key)
    )
    providers = await request.app[PROVIDERS].of(session, payment.tenant_id)
    provider = provider_named(providers, provider_name or "")
    if provider is None:
        raise Conflict(f"the payment's provider {provider_name!r} is not configured")
    return provider, attempt_key


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
    """Check, have the provider give the money back, then record it: no transaction is open
    while the provider is asked (on SQLite it would hold every writer for an HTTP call).
    Refunds of one payment take turns in this process, so a check holds until its record."""
    body = await decode(request, schemas.RefundCreate)
    refund_id = new_id("ref")
    sessions = request.app[SESSIONS]
    async with request.app[REFUND_TURNS].turn(request.match_info["payment_id"]):
        async with sessions() as session, session.begin():
            _, account, payment = await _lock_owned(session, request, Payment, "payment_id")
            amount = parse_amount(body.amount, payment.currency)
            try:
                await check_refund(session, account, payment, amount)
            except RefundError as exc:
                raise InvalidRequest.field("amount", str(exc)) from exc
            card = await _card_of(request, session, payment)
        if card is not None:
            provider, charge_key = card
            result = await provider.refund(
                charge_key, amount, refund_id, reference=payment.reference
            )
            if result.outcome is not Outcome.SUCCEEDED:
                raise Conflict(f"the payment provider refused the refund: {result.reason}")
        now = request.app[CLOCK].now()
        async with sessions() as session, session.begin():
            tenant, account, payment = await _lock_owned(session, request, Payment, "payment_id")
            refund = await refund_payment(
                session, account, payment, amount, reason=body.reason, now=now, adjust=body.adjust
            )
            refund.id = refund_id
            await refresh_family(session, tenant, account, now)
            out = schemas.RefundOut(
                id=refund.id,
                payment_id=payment.id,
                amount=amount.format(),
                reason=refund.reason,
                created_at=now,
                adjusted=body.adjust,
                payment=payment_view(payment, await account_out(session, account)),
            )
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
        tenant = await session.get(Tenant, tenant_id, options=[WITH_SECRETS])
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
    now = request.app[CLOCK].now()
    data = event.data
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            attempt = await session.scalar(
                select(PaymentAttempt).where(
                    PaymentAttempt.tenant_id == tenant_id,
                    PaymentAttempt.idempotency_key == data.idempotency_key,
                )
            )
            if attempt is None:
                # Not a charge Tollgate made: acknowledged, so the provider stops resending.
                return schemas.ProviderEventAck(received=True, duplicate=False, applied=False)
            amount = None
            if event.type == "charge.refunded":
                if data.amount is None:
                    raise InvalidRequest.field("data.amount", "a refund names its amount")
                amount = parse_amount(data.amount, attempt.currency, "data.amount").minor
            stored = charge_event(
                attempt, event.type, source="webhook", now=now, reference=data.reference,
                reason=data.reason, hard=data.hard, amount_minor=amount,
                provider_event_id=event.id,
            )  # fmt: skip
            fresh = await enqueue(session, stored)
    except IntegrityError:
        fresh = False  # the same event, stored at this moment by a concurrent delivery
    return schemas.ProviderEventAck(received=True, duplicate=not fresh, applied=False)
