"""Test mode only: read and move the clock that billing and every gateway share, and let
a simulation wait until the worker has caught up with it.

The clock is one for the whole installation: moving it moves every tenant's billing and
access. So any key reads it, but only the operator key moves it; a tenant's admin key is
refused (403), never allowed to move another tenant's time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from aiohttp import web
from msgspec import Meta, Struct

from billing_worker.api.http.appkeys import (
    CLOCK,
    OUTBOX_WAKE,
    PROVIDERS,
    SESSIONS,
    SETTINGS,
    TEST_CLOCK,
)
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, decode, respond
from billing_worker.api.http.schemas import Body
from billing_worker.services import test_clock
from billing_worker.services.errors import InvalidRequest, NotFound
from shared.clock import RedisTestClock


class ClockMove(Body):
    advance_days: Annotated[int, Meta(ge=0, le=36500)] = 0
    advance_seconds: Annotated[int, Meta(ge=0, le=10**10)] = 0
    set_to: datetime | None = None
    reset: bool = False
    #: Move time as if the worker had been down meanwhile (a real outage): what it does
    #: late is seen by the outside world now -- invoices issued and due from now, one
    #: reminder, retries spaced from now. False (a jump): as if awake all along.
    outage: bool = False
    #: Answer only once the worker has evaluated, charged and published what became due
    #: (what ``POST /v1/test/settle`` does); false: answer at once.
    settle: bool = True


class ClockOut(Struct, kw_only=True):
    now: datetime
    offset_seconds: float


class Settled(Struct, kw_only=True):
    evaluated: int
    now: datetime


def _test_clock(request: web.Request) -> RedisTestClock:
    clock = request.app[TEST_CLOCK]
    if clock is None:
        raise NotFound("the test clock exists only when TOLLGATE_TEST_MODE is on")
    return clock


def _clock_out(clock: RedisTestClock) -> ClockOut:
    return ClockOut(now=clock.now(), offset_seconds=clock.offset.total_seconds())


@router.route(
    "GET",
    "/v1/test/clock",
    summary="Read the shared test clock (test mode only)",
    role=Role.ANY,
    response=ClockOut,
    errors=(404,),
)
async def read_clock(request: web.Request) -> web.Response:
    return respond(_clock_out(_test_clock(request)))


@router.route(
    "POST",
    "/v1/test/clock",
    summary="Move the shared test clock for billing and access at once -- as if the worker "
    "were awake all along, or down meanwhile (outage) -- and answer once the worker has done "
    "what became due (unless settle is false; test mode only). The clock is every tenant's: "
    "only the operator key moves it",
    role=Role.OPERATOR,
    request=ClockMove,
    response=ClockOut,
    errors=(404,),
)
async def move_clock(request: web.Request) -> web.Response:
    clock = _test_clock(request)
    body = await decode(request, ClockMove)
    advance = timedelta(days=body.advance_days, seconds=body.advance_seconds)
    if body.reset:
        if body.set_to is not None or advance:
            raise InvalidRequest.field("reset", "cannot be combined with set_to or advance_*")
        offset = timedelta(0)
    elif body.set_to is not None:
        if advance:
            raise InvalidRequest.field("set_to", "give either set_to or advance_*, not both")
        if body.set_to.tzinfo is None:
            raise InvalidRequest.field("set_to", "needs a timezone, e.g. 2027-01-31T00:00:00Z")
        offset = body.set_to - datetime.now(UTC)
    else:
        offset = clock.offset + advance
    if body.outage and offset < clock.offset:
        raise InvalidRequest.field("outage", "an outage moves time forward")
    await clock.set_offset(offset, awake=not body.outage)
    assert request.app[CLOCK] is clock
    if body.settle:  # answer once what became due is evaluated and published
        await _settle(request, clock)
    return respond(_clock_out(clock))


@router.route(
    "POST",
    "/v1/test/settle",
    summary="Do now what the worker would do by this time, and publish it (test mode only)",
    role=Role.ANY,
    response=Settled,
    errors=(404,),
)
async def settle(request: web.Request) -> web.Response:
    """Run every due account, charge what is due, apply the payment queue and drain the
    outbox into Redis before answering."""
    clock = _test_clock(request)
    evaluated = await _settle(request, clock)
    return respond(Settled(evaluated=evaluated, now=clock.now()))


async def _settle(request: web.Request, clock: RedisTestClock) -> int:
    """Do what the worker would have done by now; returns the accounts evaluated."""
    settings = request.app[SETTINGS]
    return await test_clock.settle(
        request.app[SESSIONS], request.app[PROVIDERS], clock,
        reconcile_after=timedelta(seconds=settings.reconcile_after),
        publish=request.app[OUTBOX_WAKE].set,
    )  # fmt: skip
