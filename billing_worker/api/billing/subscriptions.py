"""Subscriptions: created with their start dates (entitlement and billing apart), and read.
The rules are ``services.subscriptions``; each change is settled by ``services.settling``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.api.http import schemas
from billing_worker.api.http.appkeys import CLOCK, OUTBOX_WAKE, SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, decode, respond
from billing_worker.api.http.views import change_view, subscription_view
from billing_worker.jobs.catch_up import real_time
from billing_worker.services import settling, subscriptions
from billing_worker.services.settling import Settled

SUBSCRIPTION = "/v1/subscriptions/{subscription_id}"


async def answer_change(
    request: web.Request,
    change: Callable[[AsyncSession], Awaitable[Settled]],
    *,
    dry_run: bool = False,
    status: int = 200,
) -> web.Response:
    """Make a subscription change in a transaction and answer with the subscription and
    what it billed; a dry run says what it would bill and keeps nothing."""
    view = partial(change_view, dry_run=dry_run)
    out = await settling.run(request.app[SESSIONS], change, view, dry_run=dry_run)
    if dry_run:
        return respond(out, 200)
    request.app[OUTBOX_WAKE].set()
    return respond(out, status)


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
    subscribe = partial(subscriptions.subscribe, tenant_id=tenant_of(request),
                        account_id=request.match_info["account_id"], new=body,
                        real=real_time(request.app[CLOCK]))  # fmt: skip
    return await answer_change(request, subscribe, dry_run=body.dry_run, status=201)


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
        sub, today, phase = await subscriptions.subscription_today(
            session, tenant_of(request), request.match_info["subscription_id"], now
        )
        out = subscription_view(sub, today, phase)
    return respond(out)
