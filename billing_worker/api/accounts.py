"""Accounts and what hangs off them: users, subscriptions, payments, invoices."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.api import schemas
from billing_worker.api.appkeys import CLOCK, OUTBOX_WAKE, SESSIONS
from billing_worker.api.auth import tenant_of
from billing_worker.api.errors import Conflict, InvalidRequest, NotFound
from billing_worker.api.routes import router
from billing_worker.api.routing import Role, decode, respond
from billing_worker.api.views import (
    account_view,
    invoice_view,
    payment_view,
    subscription_view,
    user_view,
)
from billing_worker.billing import bill_due_periods, record_payment
from billing_worker.db.models import (
    Account,
    Invoice,
    Plan,
    Subscription,
    Tenant,
    UsageDaily,
    User,
)
from billing_worker.entitlements import lock_account, refresh_account
from billing_worker.ids import new_id
from billing_worker.outbox import stage_user
from shared.money import Money, MoneyError, is_currency
from shared.states import Standing, UserStatus

ACCOUNT = "/v1/accounts/{account_id}"


async def _balance_due(session: AsyncSession, account: Account) -> int:
    owed = await session.scalar(
        select(func.coalesce(func.sum(Invoice.total_minor - Invoice.paid_minor), 0)).where(
            Invoice.tenant_id == account.tenant_id,
            Invoice.account_id == account.id,
            Invoice.status == "open",
        )
    )
    return int(owed or 0)


async def _account_out(session: AsyncSession, account: Account) -> schemas.AccountOut:
    return account_view(account, await _balance_due(session, account))


async def _account(session: AsyncSession, request: web.Request) -> Account:
    """The path's account, if it belongs to the calling tenant (else 404)."""
    account = await session.scalar(
        select(Account).where(
            Account.tenant_id == tenant_of(request), Account.id == request.match_info["account_id"]
        )
    )
    if account is None:
        raise NotFound(f"no account {request.match_info['account_id']!r}")
    return account


async def _locked(session: AsyncSession, request: web.Request) -> tuple[Tenant, Account]:
    tenant_id = tenant_of(request)
    account = await lock_account(session, tenant_id, request.match_info["account_id"])
    tenant = await session.get(Tenant, tenant_id)
    if account is None or tenant is None:
        raise NotFound(f"no account {request.match_info['account_id']!r}")
    return tenant, account


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
        account = Account(
            id=new_id("acc"),
            tenant_id=tenant_id,
            external_id=body.external_id,
            name=body.name,
            email=body.email,
            kind=body.kind,
            currency=body.currency,
            net_terms_days=(
                body.net_terms_days if body.net_terms_days is not None else tenant.net_terms_days
            ),
            credit_minor=0,
            standing=Standing.CANCELLED.value,
            standing_reason="no_active_subscription",
            ent_version=0,
            created_at=now,
        )
        session.add(account)
        await session.flush()
        await refresh_account(session, tenant, account, now)
        out = await _account_out(session, account)
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
        return respond(await _account_out(session, await _account(session, request)))


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
        _tenant, account = await _locked(session, request)
        taken = await session.scalar(
            select(User.id).where(
                User.tenant_id == account.tenant_id, User.external_id == body.external_id
            )
        )
        if taken:
            raise Conflict.field("external_id", f"user {body.external_id!r} already exists")
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
    "POST",
    ACCOUNT + "/subscriptions",
    summary="Subscribe an account to a plan; the first period is invoiced at its start",
    role=Role.TENANT,
    request=schemas.SubscriptionCreate,
    response=schemas.SubscriptionOut,
    status=201,
    errors=(404,),
)
async def create_subscription(request: web.Request) -> web.Response:
    body = await decode(request, schemas.SubscriptionCreate)
    now = request.app[CLOCK].now()
    if body.start_at is not None and body.start_at.tzinfo is None:
        raise InvalidRequest.field("start_at", "needs a timezone, e.g. 2026-01-31T00:00:00Z")
    start = body.start_at or now
    async with request.app[SESSIONS]() as session, session.begin():
        tenant, account = await _locked(session, request)
        plan = await session.scalar(
            select(Plan).where(Plan.tenant_id == tenant.id, Plan.code == body.plan)
        )
        if plan is None:
            raise InvalidRequest.field("plan", f"no plan with code {body.plan!r}")
        if plan.currency != account.currency:
            raise InvalidRequest.field(
                "plan", f"plan is priced in {plan.currency}, the account pays in {account.currency}"
            )
        sub = Subscription(
            id=new_id("sub"),
            tenant_id=tenant.id,
            account_id=account.id,
            plan_id=plan.id,
            status="active",
            cycle_day=start.day,
            started_at=start,
            next_billing_at=start,
            created_at=now,
        )
        session.add(sub)
        await session.flush()
        await bill_due_periods(session, account, now)
        await refresh_account(session, tenant, account, now)
    request.app[OUTBOX_WAKE].set()
    return respond(subscription_view(sub, plan), 201)


@router.route(
    "POST",
    ACCOUNT + "/payments",
    summary="Record a payment received; it pays the oldest invoices first, surplus is credit",
    role=Role.TENANT,
    request=schemas.PaymentCreate,
    response=schemas.PaymentOut,
    status=201,
    errors=(404,),
)
async def create_payment(request: web.Request) -> web.Response:
    body = await decode(request, schemas.PaymentCreate)
    now = request.app[CLOCK].now()
    async with request.app[SESSIONS]() as session, session.begin():
        tenant, account = await _locked(session, request)
        if body.currency != account.currency:
            raise InvalidRequest.field(
                "currency", f"the account pays in {account.currency}, not {body.currency}"
            )
        try:
            amount = Money.parse(body.amount, body.currency)
        except MoneyError as exc:
            raise InvalidRequest.field("amount", str(exc)) from exc
        if not amount.is_positive():
            raise InvalidRequest.field("amount", "must be greater than zero")
        payment = await record_payment(
            session, account, amount, method=body.method, reference=body.reference, now=now
        )
        await refresh_account(session, tenant, account, now)
        out = payment_view(payment, await _account_out(session, account))
    request.app[OUTBOX_WAKE].set()
    return respond(out, 201)


@router.route(
    "GET",
    ACCOUNT + "/invoices",
    summary="List an account's invoices, newest first",
    role=Role.TENANT,
    response=schemas.InvoiceList,
    errors=(404,),
)
async def list_invoices(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        account = await _account(session, request)
        tenant_id, account_id = account.tenant_id, account.id
        invoices = (
            await session.scalars(
                select(Invoice)
                .where(Invoice.tenant_id == tenant_id, Invoice.account_id == account_id)
                .order_by(Invoice.period_start.desc(), Invoice.id)
            )
        ).all()
    return respond(schemas.InvoiceList(data=[invoice_view(inv) for inv in invoices]))


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
        account = await _account(session, request)
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
