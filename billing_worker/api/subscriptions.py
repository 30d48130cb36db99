"""Subscriptions: create, change plan, cancel, uncancel, pause, resume, seats, usage.

Every change is a dated event on the subscription. The bill-to account is then invoiced
to today (repairs and credits included) and access is re-published, all in one
transaction. ``dry_run`` does exactly the same and rolls it back, so a preview and the
real thing can never disagree.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date, datetime
from typing import NoReturn

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.api import schemas
from billing_worker.api.appkeys import CLOCK, OUTBOX_WAKE, SESSIONS
from billing_worker.api.auth import tenant_of
from billing_worker.api.errors import ChangesBlocked, Conflict, FieldError, InvalidRequest, NotFound
from billing_worker.api.routes import router
from billing_worker.api.routing import Role, decode, respond
from billing_worker.api.views import in_invoice_order, item_view, money, subscription_view
from billing_worker.db.models import (
    Account,
    Invoice,
    InvoiceItem,
    Subscription,
    Tenant,
    UsageRecord,
)
from billing_worker.domain.catalog import BillingAlignment, Catalog, Category, ChangePolicy
from billing_worker.domain.subscriptions import (
    FOREVER,
    CancelRequest,
    ChangeRequest,
    Pause,
    QuantityChange,
    SubscriptionError,
    Terms,
    add_on_allowed,
    cancellation_for,
    first_paid_day,
    phase_on,
    plan_change_for,
    plan_on,
)
from billing_worker.ids import new_id
from billing_worker.invoicing.catalogs import CatalogBook, NoCatalog, load_book
from billing_worker.invoicing.invoicer import bill_to, invoice_account, local_today
from billing_worker.invoicing.terms import save_terms, terms_of, touch_billing
from billing_worker.jobs.catch_up import bring_up_to
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
    session: AsyncSession, tenant_id: str, account_id: str, now: datetime | None = None
) -> tuple[Tenant, Account, Account]:
    """Lock the bill-to parent (if any) before the account, always in that order; with
    ``now``, bring both up to it first (``catch_up.bring_up_to``)."""
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
    if now is not None:
        for member in dict.fromkeys((payer, account)):
            await bring_up_to(session, member, now)
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


async def _book(session: AsyncSession, tenant_id: str) -> CatalogBook:
    book = await load_book(session, tenant_id)
    if not book.versions:
        raise InvalidRequest.field("plan", "the tenant has no catalog yet: PUT /v1/catalog")
    return book


def _field_error(exc: SubscriptionError) -> NoReturn:
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


async def _run(
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
    now = request.app[CLOCK].now()

    async def change(session: AsyncSession) -> schemas.ChangeOut:
        tenant, account, payer = await lock_family(
            session, tenant_of(request), request.match_info["account_id"], now
        )
        await refuse_if_blocked(session, tenant, account, now)
        today = local_today(now, account.timezone)
        entitlement_start, billing_start = _start_dates(body, today, account.timezone)
        book = await _book(session, tenant.id)
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
            events=[],
            status="active",
            created_at=now,
        )
        session.add(sub)
        return await settle(session, tenant, account, payer, sub, now, dry_run=body.dry_run)

    try:
        return await _run(request, change, 201)
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


async def _locked_subscription(
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
        session, tenant_id, account_id, request.app[CLOCK].now()
    )
    sub = await session.get(Subscription, sub_id)
    assert sub is not None
    return tenant, account, payer, sub


async def _add_ons(session: AsyncSession, sub: Subscription) -> list[Subscription]:
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
    "POST",
    SUBSCRIPTION + "/change",
    summary="Change plan, by the catalog's change rules or a given policy",
    role=Role.TENANT,
    request=schemas.PlanChangeIn,
    response=schemas.ChangeOut,
    errors=(404,),
)
async def change_plan(request: web.Request) -> web.Response:
    body = await decode(request, schemas.PlanChangeIn)
    now = request.app[CLOCK].now()

    async def change(session: AsyncSession) -> schemas.ChangeOut:
        tenant, account, payer, sub = await _locked_subscription(session, request)
        await refuse_if_blocked(session, tenant, account, now)
        today = local_today(now, account.timezone)
        book = await _book(session, tenant.id)
        terms = terms_of(sub)
        request_ = ChangeRequest(
            requested_on=today,
            plan=body.plan,
            price_list=body.price_list,
            policy=ChangePolicy(body.policy) if body.policy else None,
        )
        try:
            planned = plan_change_for(terms, book.at, request_, payer.cycle_day)
        except SubscriptionError as exc:
            _field_error(exc)
        if not book.at(today).priced_in(body.plan, payer.currency):
            raise InvalidRequest.field("plan", f"plan {body.plan!r} has no price in "
                                       f"{payer.currency}")  # fmt: skip
        # A newer change replaces any still pending.
        kept = tuple(c for c in terms.changes if c.effective <= today)
        save_terms(sub, replace(terms, changes=(*kept, planned)))
        touch_billing(sub, planned.effective)
        catalog = book.at(today)
        for add_on in await _add_ons(session, sub):
            add_on_terms = terms_of(add_on)
            if add_on_terms.cancellation is not None:
                continue
            add_on_plan, _ = plan_on(add_on_terms, planned.effective)
            if add_on_allowed(catalog, body.plan, add_on_plan) is not None:
                ended = CancelRequest(requested_on=planned.effective, billing_policy="immediate",
                                      entitlement_date=planned.effective)  # fmt: skip
                save_terms(add_on, replace(add_on_terms, cancellation=cancellation_for(
                    add_on_terms, book.at, ended, payer.cycle_day)))  # fmt: skip
                touch_billing(add_on, planned.effective)
        return await settle(session, tenant, account, payer, sub, now, dry_run=body.dry_run)

    return await _run(request, change)


@router.route(
    "POST",
    SUBSCRIPTION + "/cancel",
    summary="Cancel: access and billing each end by their own policy; add-ons follow",
    role=Role.TENANT,
    request=schemas.CancelIn,
    response=schemas.ChangeOut,
    errors=(404,),
)
async def cancel_subscription(request: web.Request) -> web.Response:
    body = await decode(request, schemas.CancelIn)
    now = request.app[CLOCK].now()

    async def change(session: AsyncSession) -> schemas.ChangeOut:
        tenant, account, payer, sub = await _locked_subscription(session, request)
        today = local_today(now, account.timezone)
        book = await _book(session, tenant.id)
        cancel = CancelRequest(
            requested_on=today,
            entitlement_policy=ChangePolicy(body.entitlement_policy)
            if body.entitlement_policy
            else None,
            entitlement_date=body.entitlement_date,
            billing_policy=body.billing_policy,
        )
        for target in [sub, *await _add_ons(session, sub)]:
            terms = terms_of(target)
            if target is not sub and terms.cancellation is not None:
                continue
            try:
                ended = cancellation_for(terms, book.at, cancel, payer.cycle_day)
            except SubscriptionError as exc:
                _field_error(exc)
            save_terms(target, replace(terms, cancellation=ended))
            touch_billing(target, min(ended.billing_end, today))
        return await settle(session, tenant, account, payer, sub, now, dry_run=body.dry_run)

    return await _run(request, change)


@router.route(
    "POST",
    SUBSCRIPTION + "/uncancel",
    summary="Withdraw a pending cancellation (and its add-ons')",
    role=Role.TENANT,
    response=schemas.ChangeOut,
    errors=(404,),
)
async def uncancel_subscription(request: web.Request) -> web.Response:
    now = request.app[CLOCK].now()

    async def change(session: AsyncSession) -> schemas.ChangeOut:
        tenant, account, payer, sub = await _locked_subscription(session, request)
        today = local_today(now, account.timezone)
        terms = terms_of(sub)
        if terms.cancellation is None:
            raise InvalidRequest.field("subscription", "the subscription is not cancelled")
        if terms.cancellation.entitlement_end <= today:
            raise InvalidRequest.field("subscription", "the cancellation already took effect")
        for target in [sub, *await _add_ons(session, sub)]:
            target_terms = terms_of(target)
            if target_terms.cancellation == terms.cancellation:
                save_terms(target, replace(target_terms, cancellation=None))
                touch_billing(target, min(terms.cancellation.billing_end, today))
        return await settle(session, tenant, account, payer, sub, now, dry_run=False)

    return await _run(request, change)


@router.route(
    "POST",
    SUBSCRIPTION + "/pause",
    summary="Pause access and billing from a day (paused days are credited)",
    role=Role.TENANT,
    request=schemas.PauseIn,
    response=schemas.ChangeOut,
    errors=(404,),
)
async def pause_subscription(request: web.Request) -> web.Response:
    body = await decode(request, schemas.PauseIn)
    now = request.app[CLOCK].now()

    async def change(session: AsyncSession) -> schemas.ChangeOut:
        tenant, account, payer, sub = await _locked_subscription(session, request)
        today = local_today(now, account.timezone)
        start = body.start_date or today
        terms = terms_of(sub)
        _check_pause(terms, start, body.resume_date, today)
        save_terms(sub, replace(terms, pauses=(*terms.pauses, Pause(start, body.resume_date))))
        touch_billing(sub, start)
        return await settle(session, tenant, account, payer, sub, now, dry_run=body.dry_run)

    return await _run(request, change)


def _check_pause(terms: Terms, start: date, resume: date | None, today: date) -> None:
    if start < today:
        raise InvalidRequest.field("start_date", "must not be in the past")
    if start < terms.billing_start:
        raise InvalidRequest.field("start_date", "billing has not started on that day")
    if resume is not None and resume <= start:
        raise InvalidRequest.field("resume_date", "must be after start_date")
    if any(p.resume is None or p.resume > start for p in terms.pauses):
        raise InvalidRequest.field("start_date", "the subscription is already paused then")
    if terms.cancellation is not None and terms.cancellation.entitlement_end <= start:
        raise InvalidRequest.field("subscription", "the subscription is cancelled by then")


@router.route(
    "POST",
    SUBSCRIPTION + "/resume",
    summary="Resume a paused subscription (today, or on a later day)",
    role=Role.TENANT,
    request=schemas.ResumeIn,
    response=schemas.ChangeOut,
    errors=(404,),
)
async def resume_subscription(request: web.Request) -> web.Response:
    body = await decode(request, schemas.ResumeIn)
    now = request.app[CLOCK].now()

    async def change(session: AsyncSession) -> schemas.ChangeOut:
        tenant, account, payer, sub = await _locked_subscription(session, request)
        today = local_today(now, account.timezone)
        resume = body.resume_date or today
        terms = terms_of(sub)
        if not terms.pauses or (terms.pauses[-1].resume or date.max) <= today:
            raise InvalidRequest.field("subscription", "the subscription is not paused")
        last = terms.pauses[-1]
        if resume < today or resume < last.start:
            raise InvalidRequest.field("resume_date", "must be today or later")
        pauses = terms.pauses[:-1] + ((Pause(last.start, resume),) if resume > last.start else ())
        save_terms(sub, replace(terms, pauses=pauses))
        touch_billing(sub, last.start)
        return await settle(session, tenant, account, payer, sub, now, dry_run=body.dry_run)

    return await _run(request, change)


@router.route(
    "POST",
    SUBSCRIPTION + "/quantity",
    summary="Change the seat quantity (prorated; also the concurrent-session limit)",
    role=Role.TENANT,
    request=schemas.QuantityIn,
    response=schemas.ChangeOut,
    errors=(404,),
)
async def change_quantity(request: web.Request) -> web.Response:
    body = await decode(request, schemas.QuantityIn)
    now = request.app[CLOCK].now()

    async def change(session: AsyncSession) -> schemas.ChangeOut:
        tenant, account, payer, sub = await _locked_subscription(session, request)
        await refuse_if_blocked(session, tenant, account, now)
        today = local_today(now, account.timezone)
        effective = body.effective_date or today
        if effective < today:
            raise InvalidRequest.field("effective_date", "must not be in the past")
        book = await _book(session, tenant.id)
        terms = terms_of(sub)
        plan_name, _ = plan_on(terms, effective)
        if not book.at(effective).plan(plan_name).per_seat:
            raise InvalidRequest.field("quantity", f"plan {plan_name!r} is not priced per seat")
        kept = tuple(q for q in terms.quantities if q.effective < effective)
        save_terms(
            sub, replace(terms, quantities=(*kept, QuantityChange(effective, body.quantity)))
        )
        touch_billing(sub, effective)
        return await settle(session, tenant, account, payer, sub, now, dry_run=body.dry_run)

    return await _run(request, change)


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


@router.route(
    "POST",
    SUBSCRIPTION + "/usage",
    summary="Record usage units for a day; a repeated record_id is recorded once",
    role=Role.TENANT,
    request=schemas.UsageIn,
    response=schemas.UsageOut,
    status=201,
    errors=(404,),
)
async def record_usage(request: web.Request) -> web.Response:
    body = await decode(request, schemas.UsageIn)
    now = request.app[CLOCK].now()
    tenant_id = tenant_of(request)
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            tenant, account, payer, sub = await _locked_subscription(session, request)
            today = local_today(now, account.timezone)
            day = body.day or today
            if day > today:
                raise InvalidRequest.field("day", "usage cannot be recorded for a future day")
            existing = await session.scalar(
                select(UsageRecord).where(
                    UsageRecord.tenant_id == tenant_id, UsageRecord.record_id == body.record_id
                )
            )
            if existing is not None:
                if (existing.subscription_id, existing.name, existing.units, existing.day) != (
                    sub.id, body.name, body.units, day,
                ):  # fmt: skip
                    raise Conflict.field("record_id", "already used for different usage")
                return respond(_usage_out(existing, duplicate=True), 200)
            terms = terms_of(sub)
            if not terms.billing_start <= day <= terms.billing_end:
                raise InvalidRequest.field(
                    "day",
                    f"{day} is outside the subscription's billing, which runs from "
                    f"{terms.billing_start}"
                    + (f" to {terms.billing_end}" if terms.billing_end < FOREVER else ""),
                )
            book = await _book(session, tenant.id)
            plan_name, _ = plan_on(terms, day)
            names = {u.name for ph in book.at(day).plan(plan_name).phases for u in ph.usages}
            if body.name not in names:
                raise InvalidRequest.field("name", f"plan {plan_name!r} has no usage {body.name!r}")
            record = UsageRecord(
                tenant_id=tenant_id,
                subscription_id=sub.id,
                record_id=body.record_id,
                name=body.name,
                day=day,
                units=body.units,
                created_at=now,
            )
            session.add(record)
            touch_billing(sub, day)
            if day < today or day == terms.billing_end:
                # late usage (or on the last billed day, already invoiced): reconcile on
                # the next pass, without passing over an earlier due moment
                payer.next_evaluation_at = min(payer.next_evaluation_at or now, now)
            await session.flush()
            out = _usage_out(record, duplicate=False)
    except IntegrityError as exc:
        raise Conflict.field("record_id", "recorded concurrently; retry to read it") from exc
    return respond(out, 201)


def _usage_out(record: UsageRecord, *, duplicate: bool) -> schemas.UsageOut:
    return schemas.UsageOut(
        record_id=record.record_id,
        subscription_id=record.subscription_id,
        name=record.name,
        units=record.units,
        day=record.day,
        duplicate=duplicate,
    )
