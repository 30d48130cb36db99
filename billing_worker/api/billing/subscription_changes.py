"""Changing a subscription: plan changes, cancellation and its undoing, pauses, quantity,
and the usage it records -- each previewed with ``dry_run`` and settled at once. The rules
are ``services.subscription_changes``."""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import Annotated, Literal

from aiohttp import web
from msgspec import Meta, Struct
from sqlalchemy.exc import IntegrityError

from billing_worker.api.billing.subscriptions import SUBSCRIPTION, answer_change
from billing_worker.api.http import schemas
from billing_worker.api.http.appkeys import CLOCK, SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, decode, respond
from billing_worker.api.http.schemas import Body, Code, Policy
from billing_worker.db.models import UsageRecord
from billing_worker.jobs.catch_up import real_time
from billing_worker.services import subscription_changes as changes
from billing_worker.services.errors import Conflict
from billing_worker.services.families import Target


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


def _target(request: web.Request) -> Target:
    """The subscription the request changes, and when."""
    return Target(
        tenant_of(request), request.match_info["subscription_id"], real_time(request.app[CLOCK])
    )


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
    change = partial(changes.change_plan, target=_target(request), plan=body.plan,
                     price_list=body.price_list, policy=body.policy,
                     price_overrides=body.price_overrides, dry_run=body.dry_run)  # fmt: skip
    return await answer_change(request, change, dry_run=body.dry_run)


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
    change = partial(changes.cancel, target=_target(request),
                     entitlement_policy=body.entitlement_policy,
                     entitlement_date=body.entitlement_date, billing_policy=body.billing_policy,
                     dry_run=body.dry_run)  # fmt: skip
    return await answer_change(request, change, dry_run=body.dry_run)


@router.route(
    "POST",
    SUBSCRIPTION + "/uncancel",
    summary="Withdraw a pending cancellation (and its add-ons')",
    role=Role.TENANT,
    response=schemas.ChangeOut,
    errors=(404,),
)
async def uncancel_subscription(request: web.Request) -> web.Response:
    return await answer_change(request, partial(changes.uncancel, target=_target(request)))


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
    change = partial(changes.pause, target=_target(request), start_date=body.start_date,
                     resume_date=body.resume_date, dry_run=body.dry_run)  # fmt: skip
    return await answer_change(request, change, dry_run=body.dry_run)


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
    change = partial(changes.resume, target=_target(request), resume_date=body.resume_date,
                     dry_run=body.dry_run)  # fmt: skip
    return await answer_change(request, change, dry_run=body.dry_run)


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
    change = partial(changes.change_quantity, target=_target(request), quantity=body.quantity,
                     effective_date=body.effective_date, dry_run=body.dry_run)  # fmt: skip
    return await answer_change(request, change, dry_run=body.dry_run)


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
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            record, duplicate = await changes.record_usage(
                session,
                _target(request),
                record_id=body.record_id,
                name=body.name,
                units=body.units,
                day=body.day,
            )
            out = _usage_out(record, duplicate=duplicate)
    except IntegrityError as exc:
        raise Conflict.field("record_id", "recorded concurrently; retry to read it") from exc
    return respond(out, 200 if duplicate else 201)


def _usage_out(record: UsageRecord, *, duplicate: bool) -> UsageOut:
    return UsageOut(
        record_id=record.record_id,
        subscription_id=record.subscription_id,
        name=record.name,
        units=record.units,
        day=record.day,
        duplicate=duplicate,
    )
