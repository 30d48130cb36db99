"""Subscriptions: created with their start dates (entitlement and billing apart), read,
and the helpers every change shares (locking the paying family, dry runs, settling)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import NoReturn

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.api.billing.negotiated import negotiated
from billing_worker.api.http import schemas
from billing_worker.api.http.appkeys import CLOCK, OUTBOX_WAKE, SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.errors import (
    ChangesBlocked,
    Conflict,
    FieldError,
    InvalidRequest,
    NotFound,
)
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, decode, respond
from billing_worker.api.http.views import in_invoice_order, item_view, money, subscription_view
from billing_worker.db.models import (
    Account,
    Invoice,
    InvoiceItem,
    Subscription,
    Tenant,
)
from billing_worker.domain.catalog import BillingAlignment, Catalog, Category
from billing_worker.domain.changes import add_on_allowed
from billing_worker.domain.moments import RealTime
from billing_worker.domain.statuses import SubscriptionStatus
from billing_worker.domain.subscriptions import SubscriptionError, first_paid_day, phase_on, plan_on
from billing_worker.ids import new_id
from billing_worker.invoicing.catalogs import CatalogBook, NoCatalog, load_book
from billing_worker.invoicing.invoicer import bill_to, invoice_account, local_today
from billing_worker.invoicing.terms import override_rows, terms_of
from billing_worker.jobs.catch_up import bring_up_to, real_time
from billing_worker.standing.entitlements import (
    lock_account,
    refresh_account,
    refresh_followers,
)
from billing_worker.standing.evaluation import evaluate_account

SUBSCRIPTION = "/v1/subscriptions/{subscription_id}"


class DryRun(Exception):
    """Carries a dry run's answer out of the transaction, which rolls it back."""

    def __init__(self, payload: object) -> None:
        self.payload = payload


async def lock_family(
    session: AsyncSession, tenant_id: str, account_id: str, real: RealTime | None = None
) -> tuple[Tenant, Account, Account]:
    """Lock the bill-to parent (if any) before the account, always in that order; with
    ``real``, bring both up to its now first (``catch_up.bring_up_to``)."""
    parent_id = await session.scalar(
        select(Account.parent_id).where(Account.tenant_id == tenant_id, Account.id == account_id)
    )
    if parent_id is not None:
        await lock_account(session, tenant_id, parent_id)
    account = await lock_account(session, tenant_id, account_id)
    tenant = await session.get(Tenant, tenant_id)
    if account is None or tenant is None:
        raise NotFound(f"no account {account_id!r}")
    payer = await bill_to(session, account)
    if real is not None:
        for member in dict.fromkeys((payer, account)):
            await bring_up_to(session, member, real.now, real=real)
    return tenant, account, payer


async def refuse_if_blocked(
    session: AsyncSession, tenant: Tenant, account: Account, now: datetime
) -> None:
    """Refuse a change while the account's dunning stage blocks changes."""
    found = await evaluate_account(session, tenant, account, now)
    ladder = found.result.dunning
    if ladder is None or not ladder.blocks_changes:
        return
    reason = (
        f"the account is {found.result.standing} ({ladder.days_past_due} days past due) and "
        f"dunning policy {found.policy_name!r} blocks plan changes, quantity changes and new "
        "subscriptions at that stage until what is overdue is paid"
    )
    raise ChangesBlocked(f"account: {reason}", errors=[FieldError("account", reason)])


async def book_of(session: AsyncSession, tenant_id: str) -> CatalogBook:
    book = await load_book(session, tenant_id)
    if not book.versions:
        raise InvalidRequest.field("plan", "the tenant has no catalog yet: PUT /v1/catalog")
    return book


def field_error(exc: SubscriptionError) -> NoReturn:
    raise InvalidRequest.field(exc.field, str(exc)) from exc


async def invoice_preview(
    session: AsyncSession, invoice: Invoice | None, payer: Account
) -> schemas.InvoicePreview | None:
    """The invoice as the API shows it, with the payer's credit after it."""
    if invoice is None:
        return None
    items = in_invoice_order(
        (
            await session.scalars(select(InvoiceItem).where(InvoiceItem.invoice_id == invoice.id))
        ).all()
    )
    return schemas.InvoicePreview(
        invoice_date=invoice.invoice_date,
        currency=invoice.currency,
        items=[item_view(i) for i in items],
        total=money(invoice.total_minor, invoice.currency),
        credit_after=money(payer.credit_minor, payer.currency),
    )


async def settle(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    payer: Account,
    sub: Subscription,
    now: datetime,
    *,
    dry_run: bool,
) -> schemas.ChangeOut:
    """Invoice the bill-to account to today and re-publish access; or, on a dry run, say
    what that would do and undo it."""
    await session.flush()
    invoice = await invoice_account(session, tenant, payer, now)
    preview = await invoice_preview(session, invoice, payer)
    book = await load_book(session, tenant.id)
    today = local_today(now, account.timezone)
    phase = phase_on(terms_of(sub), book.at, today)
    out = schemas.ChangeOut(
        subscription=subscription_view(sub, today, phase.value if phase else None),
        invoice=preview,
        dry_run=dry_run,
    )
    if dry_run:
        raise DryRun(out)
    await refresh_account(session, tenant, payer, now)
    if payer.id != account.id:
        await refresh_account(session, tenant, account, now)
    await refresh_followers(session, tenant, payer, now)
    return out


async def run_change(
    request: web.Request,
    change: Callable[[AsyncSession], Awaitable[schemas.ChangeOut]],
    status: int = 200,
) -> web.Response:
    """Run ``change`` in a transaction and answer with what it returns (or its dry run)."""
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            out = await change(session)
    except DryRun as dry:
        return respond(dry.payload, 200)
    request.app[OUTBOX_WAKE].set()
    return respond(out, status)


def _start_dates(body: schemas.SubscriptionCreate, today: date, tz: str) -> tuple[date, date]:
    if body.start_at is not None:
        if body.start_at.tzinfo is None:
            raise InvalidRequest.field("start_at", "needs a timezone, e.g. 2026-01-31T00:00:00Z")
        start = local_today(body.start_at, tz)
    else:
        start = body.start_date or today
    entitlement = body.entitlement_start or start
    billing = body.billing_start or start
    return entitlement, billing


@router.route(
    "POST",
    "/v1/accounts/{account_id}/subscriptions",
    summary="Subscribe an account to a catalog plan; entitlement and billing may start apart",
    role=Role.TENANT,
    request=schemas.SubscriptionCreate,
    response=schemas.ChangeOut,
    status=201,
    errors=(404, 409),
)
async def create_subscription(request: web.Request) -> web.Response:
    body = await decode(request, schemas.SubscriptionCreate)
    real = real_time(request.app[CLOCK])
    now = real.now

    async def change(session: AsyncSession) -> schemas.ChangeOut:
        tenant, account, payer = await lock_family(
            session, tenant_of(request), request.match_info["account_id"], real
        )
        await refuse_if_blocked(session, tenant, account, now)
        today = local_today(now, account.timezone)
        entitlement_start, billing_start = _start_dates(body, today, account.timezone)
        book = await book_of(session, tenant.id)
        catalog = book.at(billing_start)
        if body.plan not in catalog.plans:
            raise InvalidRequest.field("plan", f"the catalog has no plan {body.plan!r}")
        if not catalog.priced_in(body.plan, payer.currency):
            raise InvalidRequest.field(
                "plan", f"plan {body.plan!r} has no price in {payer.currency}"
            )
        price_list = body.price_list or "default"
        if not catalog.has_price_list(price_list):
            raise InvalidRequest.field("price_list", f"no price list {price_list!r}")
        plan = catalog.plan(body.plan)
        if body.quantity != 1 and not plan.per_seat:
            raise InvalidRequest.field("quantity", f"plan {body.plan!r} is not priced per seat")
        base_id = await _check_bundle(session, tenant.id, account, body, catalog, today)
        overrides = negotiated(catalog, body.plan, price_list, body.price_overrides, payer.currency)
        if body.external_id is not None:
            taken = await session.scalar(
                select(Subscription.id).where(
                    Subscription.tenant_id == tenant.id,
                    Subscription.external_id == body.external_id,
                )
            )
            if taken:
                raise Conflict.field("external_id", f"subscription {body.external_id!r} exists")
        if payer.cycle_day is None and (
            catalog.billing_alignment(body.plan) is BillingAlignment.ACCOUNT
        ):
            payer.cycle_day = first_paid_day(catalog, body.plan, billing_start).day
        sub = Subscription(
            id=new_id("sub"),
            tenant_id=tenant.id,
            account_id=account.id,
            base_id=base_id,
            external_id=body.external_id,
            plan=body.plan,
            price_list=price_list,
            quantity=body.quantity,
            cycle_day=body.cycle_day,
            entitlement_start=entitlement_start,
            billing_start=billing_start,
            price_overrides=override_rows(overrides),
            events=[],
            status=SubscriptionStatus.ACTIVE,
            created_at=now,
        )
        session.add(sub)
        return await settle(session, tenant, account, payer, sub, now, dry_run=body.dry_run)

    try:
        return await run_change(request, change, 201)
    except NoCatalog as exc:
        raise InvalidRequest.field("plan", str(exc)) from exc


async def _check_bundle(
    session: AsyncSession,
    tenant_id: str,
    account: Account,
    body: schemas.SubscriptionCreate,
    catalog: Catalog,
    today: date,
) -> str | None:
    product = catalog.product_of(body.plan)
    if product.category is not Category.ADD_ON:
        if body.base_subscription_id is not None:
            raise InvalidRequest.field("base_subscription_id", "only add-ons have a base")
        return None
    if body.base_subscription_id is None:
        raise InvalidRequest.field("base_subscription_id", f"{body.plan!r} is an add-on")
    base = await session.scalar(
        select(Subscription).where(
            Subscription.tenant_id == tenant_id,
            Subscription.account_id == account.id,
            Subscription.id == body.base_subscription_id,
        )
    )
    if base is None:
        raise InvalidRequest.field("base_subscription_id", "no such subscription on this account")
    base_plan, _ = plan_on(terms_of(base), today)
    why = add_on_allowed(catalog, base_plan, body.plan)
    if why is not None:
        raise InvalidRequest.field("plan", why)
    if product.max_per_bundle is not None:
        siblings = await session.scalar(
            select(func.count())
            .select_from(Subscription)
            .where(
                Subscription.tenant_id == tenant_id,
                Subscription.base_id == base.id,
                Subscription.plan.in_(
                    [p.name for p in catalog.plans.values() if p.product == product.name]
                ),
                Subscription.entitlement_end.is_(None),
            )
        )
        if (siblings or 0) >= product.max_per_bundle:
            raise InvalidRequest.field(
                "plan", f"at most {product.max_per_bundle} {product.name!r} per base subscription"
            )
    return base.id


async def locked_subscription(
    session: AsyncSession, request: web.Request
) -> tuple[Tenant, Account, Account, Subscription]:
    tenant_id = tenant_of(request)
    sub_id = request.match_info["subscription_id"]
    account_id = await session.scalar(
        select(Subscription.account_id).where(
            Subscription.tenant_id == tenant_id, Subscription.id == sub_id
        )
    )
    if account_id is None:
        raise NotFound(f"no subscription {sub_id!r}")
    tenant, account, payer = await lock_family(
        session, tenant_id, account_id, real_time(request.app[CLOCK])
    )
    sub = await session.get(Subscription, sub_id)
    assert sub is not None
    return tenant, account, payer, sub


async def add_ons(session: AsyncSession, sub: Subscription) -> list[Subscription]:
    return list(
        (
            await session.scalars(
                select(Subscription).where(
                    Subscription.tenant_id == sub.tenant_id, Subscription.base_id == sub.id
                )
            )
        ).all()
    )


@router.route(
    "GET",
    SUBSCRIPTION,
    summary="Read a subscription: plan, phase, dates, pauses and pending changes",
    role=Role.TENANT,
    response=schemas.SubscriptionOut,
    errors=(404,),
)
async def get_subscription(request: web.Request) -> web.Response:
    now = request.app[CLOCK].now()
    async with request.app[SESSIONS]() as session:
        sub = await session.scalar(
            select(Subscription).where(
                Subscription.tenant_id == tenant_of(request),
                Subscription.id == request.match_info["subscription_id"],
            )
        )
        if sub is None:
            raise NotFound(f"no subscription {request.match_info['subscription_id']!r}")
        account = await session.get(Account, sub.account_id)
        assert account is not None
        today = local_today(now, account.timezone)
        book = await load_book(session, sub.tenant_id)
        phase = phase_on(terms_of(sub), book.at, today)
    return respond(subscription_view(sub, today, phase.value if phase else None))
