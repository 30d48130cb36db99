"""Invoice adjustments by hand: credit, one-off charges, item adjustments, void, write-off
and its undoing, and the invoice history that records them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from msgspec import Meta, Struct
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.api.http import schemas
from billing_worker.api.http.appkeys import CLOCK, OUTBOX_WAKE, SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, decode, respond
from billing_worker.api.http.schemas import Amount, Body, Currency
from billing_worker.api.http.views import account_out, invoice_view, money
from billing_worker.db.models import Invoice
from billing_worker.jobs.catch_up import real_time
from billing_worker.services import adjustments


class WriteOffIn(Body):
    reason: Annotated[str, Meta(max_length=200)] | None = None


class CreditIn(Body):
    amount: Amount
    currency: Currency
    reason: Annotated[str, Meta(max_length=200)] | None = None


class ChargeIn(Body):
    amount: Amount
    currency: Currency
    description: Annotated[str, Meta(min_length=1, max_length=200)]
    #: Leave it as a draft invoice, to be committed with POST /v1/invoices/{id}/commit.
    draft: bool = False


class AdjustmentIn(Body):
    amount: Amount
    reason: Annotated[str, Meta(max_length=200)] | None = None


class InvoiceEventOut(Struct, kw_only=True):
    action: str
    amount: str | None
    reason: str | None
    related_invoice_id: str | None
    created_at: datetime


class InvoiceHistory(Struct, kw_only=True):
    invoice_id: str
    data: list[InvoiceEventOut]


ACCOUNT = "/v1/accounts/{account_id}"
INVOICE = "/v1/invoices/{invoice_id}"


async def _invoice_out(session: AsyncSession, invoice: Invoice) -> schemas.InvoiceOut:
    return invoice_view(*await adjustments.invoice_with_items(session, invoice))


def _account_target(request: web.Request) -> dict[str, Any]:
    return {"tenant_id": tenant_of(request), "account_id": request.match_info["account_id"],
            "real": real_time(request.app[CLOCK])}  # fmt: skip


@router.route(
    "POST",
    ACCOUNT + "/credits",
    summary="Give the account credit, with a reason: a credit invoice whose amount becomes "
    "account credit and pays open invoices, oldest first",
    role=Role.TENANT,
    request=CreditIn,
    response=schemas.InvoiceOut,
    status=201,
    errors=(404,),
)
async def give_credit(request: web.Request) -> web.Response:
    body = await decode(request, CreditIn)
    async with request.app[SESSIONS]() as session, session.begin():
        invoice = await adjustments.give_credit(
            session, **_account_target(request), amount=body.amount, currency=body.currency,
            reason=body.reason,
        )  # fmt: skip
        out = await _invoice_out(session, invoice)
    request.app[OUTBOX_WAKE].set()
    return respond(out, 201)


@router.route(
    "POST",
    ACCOUNT + "/charges",
    summary="Charge the account once (an external charge) on an invoice of its own, "
    "optionally as a draft",
    role=Role.TENANT,
    request=ChargeIn,
    response=schemas.InvoiceOut,
    status=201,
    errors=(404,),
)
async def add_charge(request: web.Request) -> web.Response:
    body = await decode(request, ChargeIn)
    async with request.app[SESSIONS]() as session, session.begin():
        invoice = await adjustments.add_charge(
            session, **_account_target(request), amount=body.amount, currency=body.currency,
            description=body.description, draft=body.draft,
        )  # fmt: skip
        out = await _invoice_out(session, invoice)
    request.app[OUTBOX_WAKE].set()
    return respond(out, 201)


@router.route(
    "POST",
    INVOICE + "/items/{item_id}/adjustments",
    summary="Reduce an issued item by an amount (at most what is left of it); the credit "
    "goes on an invoice of its own, and later repairs of the item are capped by what is left",
    role=Role.TENANT,
    request=AdjustmentIn,
    response=schemas.InvoiceOut,
    status=201,
    errors=(404, 409),
)
async def adjust_item(request: web.Request) -> web.Response:
    body = await decode(request, AdjustmentIn)
    async with request.app[SESSIONS]() as session, session.begin():
        carrier = await adjustments.adjust_item(
            session, tenant_of(request), request.match_info["invoice_id"],
            request.match_info["item_id"], real_time(request.app[CLOCK]), amount=body.amount,
            reason=body.reason,
        )  # fmt: skip
        out = await _invoice_out(session, carrier)
    request.app[OUTBOX_WAKE].set()
    return respond(out, 201)


async def _change_status(request: web.Request, change: str) -> web.Response:
    body = await decode(request, WriteOffIn)
    async with request.app[SESSIONS]() as session, session.begin():
        account = await adjustments.change_status(
            session, tenant_of(request), request.match_info["invoice_id"],
            real_time(request.app[CLOCK]), change, body.reason,
        )  # fmt: skip
        out = await account_out(session, account)
    request.app[OUTBOX_WAKE].set()
    return respond(out)


@router.route(
    "POST",
    INVOICE + "/void",
    summary="Void an unpaid invoice (refused when it is paid, partly paid, repaired or "
    "adjusted); what it billed is billed again by the next invoicing run if still owed",
    role=Role.TENANT,
    request=WriteOffIn,
    response=schemas.AccountOut,
    errors=(404, 409),
)
async def void(request: web.Request) -> web.Response:
    return await _change_status(request, "void")


@router.route(
    "POST",
    INVOICE + "/write-off",
    summary="Write off what is left unpaid on an invoice: it no longer counts for dunning",
    role=Role.TENANT,
    request=WriteOffIn,
    response=schemas.AccountOut,
    errors=(404, 409),
)
async def write_off(request: web.Request) -> web.Response:
    return await _change_status(request, "write_off")


@router.route(
    "POST",
    INVOICE + "/write-off/undo",
    summary="Owe a written-off invoice again: it counts for dunning from its due date",
    role=Role.TENANT,
    request=WriteOffIn,
    response=schemas.AccountOut,
    errors=(404, 409),
)
async def undo_write_off(request: web.Request) -> web.Response:
    return await _change_status(request, "undo_write_off")


@router.route(
    "GET",
    INVOICE + "/history",
    summary="What was done to the invoice after it was issued, oldest first: credits, "
    "adjustments, void, write-off and its undoing, with amounts and reasons",
    role=Role.TENANT,
    response=InvoiceHistory,
    errors=(404,),
)
async def invoice_history(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        invoice, events = await adjustments.history(
            session, tenant_of(request), request.match_info["invoice_id"]
        )
    return respond(
        InvoiceHistory(
            invoice_id=invoice.id,
            data=[
                InvoiceEventOut(
                    action=e.action,
                    amount=money(e.amount_minor, invoice.currency)
                    if e.amount_minor is not None
                    else None,
                    reason=e.reason,
                    related_invoice_id=e.related_invoice_id,
                    created_at=e.created_at,
                )
                for e in events
            ],
        )
    )
