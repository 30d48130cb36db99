"""Changing a subscription: plan changes, cancellation and its undoing, pauses, quantity,
and the usage it records -- each previewed with ``dry_run`` and settled at once."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Annotated, Literal

from aiohttp import web
from msgspec import Meta, Struct
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.api.billing.negotiated import negotiated
from billing_worker.api.billing.subscriptions import (
    SUBSCRIPTION,
    add_ons,
    book_of,
    field_error,
    locked_subscription,
    refuse_if_blocked,
    run_change,
    settle,
)
from billing_worker.api.http import schemas
from billing_worker.api.http.appkeys import CLOCK, SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.errors import Conflict, InvalidRequest
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, decode, respond
from billing_worker.api.http.schemas import Body, Code, Policy
from billing_worker.db.models import (
    UsageRecord,
)
from billing_worker.domain.catalog import ChangePolicy
from billing_worker.domain.changes import (
    CancelRequest,
    ChangeRequest,
    add_on_allowed,
    cancellation_for,
    plan_change_for,
)
from billing_worker.domain.subscriptions import (
    FOREVER,
    Pause,
    QuantityChange,
    SubscriptionError,
    Terms,
    plan_on,
)
from billing_worker.invoicing.invoicer import local_today
from billing_worker.invoicing.terms import save_terms, terms_of, touch_billing


class PlanChangeIn(Body):
    plan: Code
    price_list: Code | None = None
    policy: Policy | None = None
    #: The new plan's negotiated prices (the old plan's end with it).
    price_overrides: schemas.PriceOverrides | None = None
    dry_run: bool = False


class CancelIn(Body):
    entitlement_policy: Policy | None = None
    entitlement_date: date | None = None
    billing_policy: Literal["immediate", "end_of_term", "start_of_term"] | None = None
    dry_run: bool = False


class PauseIn(Body):
    start_date: date | None = None
    resume_date: date | None = None
    dry_run: bool = False


class ResumeIn(Body):
    resume_date: date | None = None
    dry_run: bool = False


class QuantityIn(Body):
    quantity: Annotated[int, Meta(ge=1, le=10_000_000)]
    effective_date: date | None = None
    dry_run: bool = False


class UsageIn(Body):
    record_id: Annotated[str, Meta(min_length=1, max_length=200)]
    name: Code
    units: Annotated[int, Meta(ge=0, le=10**15)]
    day: date | None = None


class UsageOut(Struct, kw_only=True):
    record_id: str
    subscription_id: str
    name: str
    units: int
    day: date
    duplicate: bool


@router.route(
    "POST",
    SUBSCRIPTION + "/change",
    summary="Change plan, by the catalog's change rules or a given policy",
    role=Role.TENANT,
    request=PlanChangeIn,
    response=schemas.ChangeOut,
    errors=(404,),
)
async def change_plan(request: web.Request) -> web.Response:
    body = await decode(request, PlanChangeIn)
    now = request.app[CLOCK].now()

    async def change(session: AsyncSession) -> schemas.ChangeOut:
        tenant, account, payer, sub = await locked_subscription(session, request)
        await refuse_if_blocked(session, tenant, account, now)
        today = local_today(now, account.timezone)
        book = await book_of(session, tenant.id)
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
            field_error(exc)
        if not book.at(today).priced_in(body.plan, payer.currency):
            raise InvalidRequest.field("plan", f"plan {body.plan!r} has no price in "
                                       f"{payer.currency}")  # fmt: skip
        if body.price_overrides:
            overrides = negotiated(book.at(planned.effective), planned.plan, planned.price_list,
                                   body.price_overrides, payer.currency)  # fmt: skip
            planned = replace(planned, price_overrides=overrides)
        # A newer change replaces any still pending.
        kept = tuple(c for c in terms.changes if c.effective <= today)
        save_terms(sub, replace(terms, changes=(*kept, planned)))
        touch_billing(sub, planned.effective)
        catalog = book.at(today)
        for add_on in await add_ons(session, sub):
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

    return await run_change(request, change)


@router.route(
    "POST",
    SUBSCRIPTION + "/cancel",
    summary="Cancel: access and billing each end by their own policy; add-ons follow",
    role=Role.TENANT,
    request=CancelIn,
    response=schemas.ChangeOut,
    errors=(404,),
)
async def cancel_subscription(request: web.Request) -> web.Response:
    body = await decode(request, CancelIn)
    now = request.app[CLOCK].now()

    async def change(session: AsyncSession) -> schemas.ChangeOut:
        tenant, account, payer, sub = await locked_subscription(session, request)
        today = local_today(now, account.timezone)
        book = await book_of(session, tenant.id)
        cancel = CancelRequest(
            requested_on=today,
            entitlement_policy=ChangePolicy(body.entitlement_policy)
            if body.entitlement_policy
            else None,
            entitlement_date=body.entitlement_date,
            billing_policy=body.billing_policy,
        )
        for target in [sub, *await add_ons(session, sub)]:
            terms = terms_of(target)
            if target is not sub and terms.cancellation is not None:
                continue
            try:
                ended = cancellation_for(terms, book.at, cancel, payer.cycle_day)
            except SubscriptionError as exc:
                field_error(exc)
            save_terms(target, replace(terms, cancellation=ended))
            touch_billing(target, min(ended.billing_end, today))
        return await settle(session, tenant, account, payer, sub, now, dry_run=body.dry_run)

    return await run_change(request, change)


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
        tenant, account, payer, sub = await locked_subscription(session, request)
        today = local_today(now, account.timezone)
        terms = terms_of(sub)
        if terms.cancellation is None:
            raise InvalidRequest.field("subscription", "the subscription is not cancelled")
        if terms.cancellation.entitlement_end <= today:
            raise InvalidRequest.field("subscription", "the cancellation already took effect")
        for target in [sub, *await add_ons(session, sub)]:
            target_terms = terms_of(target)
            if target_terms.cancellation == terms.cancellation:
                save_terms(target, replace(target_terms, cancellation=None))
                touch_billing(target, min(terms.cancellation.billing_end, today))
        return await settle(session, tenant, account, payer, sub, now, dry_run=False)

    return await run_change(request, change)


@router.route(
    "POST",
    SUBSCRIPTION + "/pause",
    summary="Pause access and billing from a day (paused days are credited)",
    role=Role.TENANT,
    request=PauseIn,
    response=schemas.ChangeOut,
    errors=(404,),
)
async def pause_subscription(request: web.Request) -> web.Response:
    body = await decode(request, PauseIn)
    now = request.app[CLOCK].now()

    async def change(session: AsyncSession) -> schemas.ChangeOut:
        tenant, account, payer, sub = await locked_subscription(session, request)
        today = local_today(now, account.timezone)
        start = body.start_date or today
        terms = terms_of(sub)
        _check_pause(terms, start, body.resume_date, today)
        save_terms(sub, replace(terms, pauses=(*terms.pauses, Pause(start, body.resume_date))))
        touch_billing(sub, start)
        return await settle(session, tenant, account, payer, sub, now, dry_run=body.dry_run)

    return await run_change(request, change)


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
    request=ResumeIn,
    response=schemas.ChangeOut,
    errors=(404,),
)
async def resume_subscription(request: web.Request) -> web.Response:
    body = await decode(request, ResumeIn)
    now = request.app[CLOCK].now()

    async def change(session: AsyncSession) -> schemas.ChangeOut:
        tenant, account, payer, sub = await locked_subscription(session, request)
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

    return await run_change(request, change)


@router.route(
    "POST",
    SUBSCRIPTION + "/quantity",
    summary="Change the seat quantity (prorated; also the concurrent-session limit)",
    role=Role.TENANT,
    request=QuantityIn,
    response=schemas.ChangeOut,
    errors=(404,),
)
async def change_quantity(request: web.Request) -> web.Response:
    body = await decode(request, QuantityIn)
    now = request.app[CLOCK].now()

    async def change(session: AsyncSession) -> schemas.ChangeOut:
        tenant, account, payer, sub = await locked_subscription(session, request)
        await refuse_if_blocked(session, tenant, account, now)
        today = local_today(now, account.timezone)
        effective = body.effective_date or today
        if effective < today:
            raise InvalidRequest.field("effective_date", "must not be in the past")
        book = await book_of(session, tenant.id)
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

    return await run_change(request, change)


@router.route(
    "POST",
    SUBSCRIPTION + "/usage",
    summary="Record usage units for a day; a repeated record_id is recorded once",
    role=Role.TENANT,
    request=UsageIn,
    response=UsageOut,
    status=201,
    errors=(404,),
)
async def record_usage(request: web.Request) -> web.Response:
    body = await decode(request, UsageIn)
    now = request.app[CLOCK].now()
    tenant_id = tenant_of(request)
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            tenant, account, payer, sub = await locked_subscription(session, request)
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
            book = await book_of(session, tenant.id)
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


def _usage_out(record: UsageRecord, *, duplicate: bool) -> UsageOut:
    return UsageOut(
        record_id=record.record_id,
        subscription_id=record.subscription_id,
        name=record.name,
        units=record.units,
        day=record.day,
        duplicate=duplicate,
    )
