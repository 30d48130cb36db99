"""Accounts and what hangs off them: users, subscriptions, payments, invoices."""

from __future__ import annotations

from datetime import date
from functools import partial

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.api.http import schemas
from billing_worker.api.http.appkeys import CLOCK, OUTBOX_WAKE, SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, decode, respond
from billing_worker.api.http.views import (
    account_out,
    billed_view,
    invoice_view,
    money,
    user_view,
)
from billing_worker.db.models import (
    Account,
    Tenant,
)
from billing_worker.jobs.catch_up import real_time
from billing_worker.services import accounts, invoices, settling
from billing_worker.services.families import lock_account_now
from billing_worker.services.invoices import Billed

ACCOUNT = "/v1/accounts/{account_id}"


async def tenant_account(session: AsyncSession, request: web.Request) -> Account:
    """The path's account, if it belongs to the calling tenant (else 404)."""
    return await accounts.tenant_account(
        session, tenant_of(request), request.match_info["account_id"]
    )


async def locked_account(session: AsyncSession, request: web.Request) -> tuple[Tenant, Account]:
    """The path's account of the calling tenant, locked and brought up to now."""
    return await lock_account_now(
        session, tenant_of(request), request.match_info["account_id"],
        real_time(request.app[CLOCK]),
    )  # fmt: skip


@router.route(
    "POST",
    "/v1/accounts",
    summary="Create an account (consumer or enterprise)",
    role=Role.TENANT,
    request=schemas.AccountCreate,
    response=schemas.AccountOut,
    status=201,
    errors=(409,),
)
async def create_account(request: web.Request) -> web.Response:
    body = await decode(request, schemas.AccountCreate)
    now = request.app[CLOCK].now()
    async with request.app[SESSIONS]() as session, session.begin():
        account = await accounts.create_account(session, tenant_of(request), body, now)
        out = await account_out(session, account)
    request.app[OUTBOX_WAKE].set()
    return respond(out, 201)


@router.route(
    "GET",
    ACCOUNT,
    summary="Read an account and its standing",
    role=Role.TENANT,
    response=schemas.AccountOut,
    errors=(404,),
)
async def get_account(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        return respond(await account_out(session, await tenant_account(session, request)))


@router.route(
    "POST",
    ACCOUNT + "/users",
    summary="Add an end user to an account",
    role=Role.TENANT,
    request=schemas.UserCreate,
    response=schemas.UserOut,
    status=201,
    errors=(404, 409),
)
async def create_user(request: web.Request) -> web.Response:
    body = await decode(request, schemas.UserCreate)
    now = request.app[CLOCK].now()
    async with request.app[SESSIONS]() as session, session.begin():
        _tenant, account = await locked_account(session, request)
        user = await accounts.add_user(session, account, body.external_id, body.email, now)
    request.app[OUTBOX_WAKE].set()
    return respond(user_view(user), 201)


@router.route(
    "GET",
    ACCOUNT + "/invoices",
    summary="List an account's invoices with their items, newest first",
    role=Role.TENANT,
    response=schemas.InvoiceList,
    errors=(404,),
)
async def list_invoices(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        listed = await accounts.invoices_of(session, await tenant_account(session, request))
    return respond(schemas.InvoiceList(data=[invoice_view(i, items) for i, items in listed]))


@router.route(
    "POST",
    ACCOUNT + "/invoices",
    summary="Invoice the account now (to a target date); dry_run says what it would bill",
    role=Role.TENANT,
    request=schemas.InvoiceCreate,
    response=schemas.InvoicePreview,
    errors=(404, 409),
)
async def create_invoice(request: web.Request) -> web.Response:
    body = await decode(request, schemas.InvoiceCreate)
    now = request.app[CLOCK].now()
    invoice_now = partial(invoices.invoice_now, tenant_id=tenant_of(request),
                          account_id=request.match_info["account_id"], now=now,
                          target=body.target_date, dry_run=body.dry_run)  # fmt: skip
    preview = await settling.run(request.app[SESSIONS], invoice_now, _preview, dry_run=body.dry_run)
    if body.dry_run:
        return respond(preview)
    request.app[OUTBOX_WAKE].set()
    return respond(preview, 201 if preview.items else 200)


def _preview(outcome: tuple[Billed, date]) -> schemas.InvoicePreview:
    billed, invoice_date = outcome
    payer = billed.payer
    return billed_view(billed) or schemas.InvoicePreview(
        invoice_date=invoice_date,
        currency=payer.currency,
        items=[],
        total=money(0, payer.currency),
        credit_after=money(payer.credit_minor, payer.currency),
    )


@router.route(
    "POST",
    "/v1/invoices/{invoice_id}/commit",
    summary="Commit a draft invoice: it is issued, due by the account's terms",
    role=Role.TENANT,
    response=schemas.InvoiceOut,
    errors=(404, 409),
)
async def commit_draft(request: web.Request) -> web.Response:
    now = request.app[CLOCK].now()
    async with request.app[SESSIONS]() as session, session.begin():
        invoice, items = await invoices.commit_draft(
            session, tenant_of(request), request.match_info["invoice_id"], now
        )
        out = invoice_view(invoice, items)
    request.app[OUTBOX_WAKE].set()
    return respond(out)


@router.route(
    "GET",
    ACCOUNT + "/usage",
    summary="Daily usage the gateways recorded: logins, distinct active users, peak sessions",
    role=Role.TENANT,
    response=schemas.UsageList,
    errors=(404,),
)
async def list_usage(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        rows = await accounts.usage_days(session, await tenant_account(session, request))
    return respond(
        schemas.UsageList(
            data=[
                schemas.UsageDay(
                    day=row.day,
                    logins=row.logins,
                    active_users=row.active_users,
                    peak_sessions=row.peak_sessions,
                )
                for row in rows
            ]
        )
    )
