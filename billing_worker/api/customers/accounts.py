"""Accounts and what hangs off them: users, subscriptions, payments, invoices."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import partial
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from sqlalchemy import select
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
from billing_worker.db.locking import lock_account
from billing_worker.db.models import (
    Account,
    Invoice,
    InvoiceItem,
    Tenant,
    UsageDaily,
    User,
)
from billing_worker.ids import new_id
from billing_worker.jobs.catch_up import bring_up_to, real_time
from billing_worker.publishing.outbox import stage_user
from billing_worker.services import accounts, invoices, settling
from billing_worker.services.errors import Conflict, InvalidRequest, NotFound
from billing_worker.services.settling import Billed
from billing_worker.standing.entitlements import refresh_account
from shared.money import is_currency
from shared.states import Reason, Standing, UserStatus

ACCOUNT = "/v1/accounts/{account_id}"


async def tenant_account(session: AsyncSession, request: web.Request) -> Account:
    """The path's account, if it belongs to the calling tenant (else 404)."""
    return await accounts.tenant_account(
        session, tenant_of(request), request.match_info["account_id"]
    )


async def locked_account(session: AsyncSession, request: web.Request) -> tuple[Tenant, Account]:
    tenant_id = tenant_of(request)
    account = await lock_account(session, tenant_id, request.match_info["account_id"])
    tenant = await session.get(Tenant, tenant_id)
    if account is None or tenant is None:
        raise NotFound(f"no account {request.match_info['account_id']!r}")
    real = real_time(request.app[CLOCK])
    await bring_up_to(session, account, real.now, real=real)
    return tenant, account


async def _check_parent(session: AsyncSession, tenant_id: str, body: schemas.AccountCreate) -> None:
    if body.parent_id is None:
        if body.payment_delegated:
            raise InvalidRequest.field("payment_delegated", "needs a parent_id to pay for it")
        return
    parent = await session.scalar(
        select(Account).where(Account.tenant_id == tenant_id, Account.id == body.parent_id)
    )
    if parent is None:
        raise InvalidRequest.field("parent_id", f"no account {body.parent_id!r}")
    if parent.parent_id is not None:
        raise InvalidRequest.field("parent_id", "a child account cannot be a parent")
    pays = body.payment_delegated or parent.kind == "reseller"
    if pays and parent.currency != body.currency:
        raise InvalidRequest.field(
            "currency", f"the paying parent is billed in {parent.currency}, not {body.currency}"
        )
    if parent.kind == "reseller" and body.invoicing == "held":
        raise InvalidRequest.field("invoicing", invoiced_by_parent(parent.id, "invoicing"))


def invoiced_by_parent(parent_id: str, field: str) -> str:
    """Why ``field`` cannot be set on an account its parent is invoiced for."""
    return f"this account is invoiced through its parent {parent_id}: set the parent's {field}"


async def items_of(
    session: AsyncSession, tenant_id: str, invoices: Sequence[Invoice]
) -> dict[str, list[InvoiceItem]]:
    """The items of ``invoices``, by invoice id."""
    rows = (
        await session.scalars(
            select(InvoiceItem).where(
                InvoiceItem.tenant_id == tenant_id,
                InvoiceItem.invoice_id.in_([i.id for i in invoices]),
            )
        )
    ).all()
    by_invoice: dict[str, list[InvoiceItem]] = {}
    for item in rows:
        by_invoice.setdefault(item.invoice_id, []).append(item)
    return by_invoice


def is_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


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
    tenant_id = tenant_of(request)
    body = await decode(request, schemas.AccountCreate)
    if not is_currency(body.currency):
        raise InvalidRequest.field("currency", f"{body.currency!r} is not an ISO 4217 currency")
    if not is_time_zone(body.timezone):
        raise InvalidRequest.field("timezone", f"{body.timezone!r} is not an IANA time zone")
    now = request.app[CLOCK].now()
    async with request.app[SESSIONS]() as session, session.begin():
        tenant = await session.get(Tenant, tenant_id)
        assert tenant is not None  # the key's tenant exists: keys reference it
        if body.external_id is not None:
            taken = await session.scalar(
                select(Account.id).where(
                    Account.tenant_id == tenant_id, Account.external_id == body.external_id
                )
            )
            if taken:
                raise Conflict.field("external_id", f"account {body.external_id!r} exists")
        await _check_parent(session, tenant_id, body)
        account = Account(
            id=new_id("acc"),
            tenant_id=tenant_id,
            external_id=body.external_id,
            name=body.name,
            email=body.email,
            billing_address="\n".join(body.billing_address) if body.billing_address else None,
            kind=body.kind,
            currency=body.currency,
            net_terms_days=(
                body.net_terms_days if body.net_terms_days is not None else tenant.net_terms_days
            ),
            credit_minor=0,
            timezone=body.timezone,
            cycle_day=body.cycle_day,
            parent_id=body.parent_id,
            payment_delegated=body.payment_delegated,
            price_list=body.price_list,
            collection=body.collection,
            invoicing=body.invoicing,
            dunning_policy=body.dunning_policy,
            standing=Standing.CANCELLED.value,
            standing_reason=Reason.NO_ACTIVE_SUBSCRIPTION,
            ent_version=0,
            created_at=now,
        )
        session.add(account)
        await session.flush()
        await refresh_account(session, tenant, account, now)
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
        taken = await session.scalar(
            select(User)
            .where(User.tenant_id == account.tenant_id, User.external_id == body.external_id)
            .with_for_update()
        )
        if taken is not None and taken.status != UserStatus.DELETED.value:
            raise Conflict.field("external_id", f"user {body.external_id!r} already exists")
        if taken is not None:  # a removed user's id, used again: a new life, a newer version
            user = taken
            user.account_id, user.email = account.id, body.email
            user.status, user.version, user.created_at = (
                UserStatus.ACTIVE.value,
                user.version + 1,
                now,
            )
        else:
            user = User(
                id=new_id("usr"),
                tenant_id=account.tenant_id,
                account_id=account.id,
                external_id=body.external_id,
                email=body.email,
                status=UserStatus.ACTIVE.value,
                version=1,
                created_at=now,
            )
            session.add(user)
        stage_user(session, user, now)
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
        account = await tenant_account(session, request)
        tenant_id, account_id = account.tenant_id, account.id
        invoices = (
            await session.scalars(
                select(Invoice)
                .where(Invoice.tenant_id == tenant_id, Invoice.account_id == account_id)
                .order_by(Invoice.invoice_date.desc(), Invoice.issued_at.desc(), Invoice.id)
                .limit(500)
            )
        ).all()
        by_invoice = await items_of(session, tenant_id, invoices)
    return respond(
        schemas.InvoiceList(data=[invoice_view(i, by_invoice.get(i.id, [])) for i in invoices])
    )


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
        account = await tenant_account(session, request)
        tenant_id, account_id = account.tenant_id, account.id
        rows = (
            await session.scalars(
                select(UsageDaily)
                .where(UsageDaily.tenant_id == tenant_id, UsageDaily.account_id == account_id)
                .order_by(UsageDaily.day.desc())
                .limit(400)
            )
        ).all()
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
