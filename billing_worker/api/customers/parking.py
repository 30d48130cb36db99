"""What the worker parked (see ``billing_worker.runtime.parking``), and releasing it."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from msgspec import Struct

from billing_worker.api.http import schemas
from billing_worker.api.http.appkeys import CLOCK, OUTBOX_WAKE, PAYMENTS_WAKE, SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, respond, serial_id
from billing_worker.api.http.views import account_out
from billing_worker.jobs.catch_up import real_time
from billing_worker.services import parking
from billing_worker.services.errors import NotFound


class ParkedAccount(Struct, kw_only=True):
    id: str
    name: str
    parked: schemas.Parked


class ParkedEvent(Struct, kw_only=True):
    id: int
    account_id: str
    type: str
    key: str
    amount_minor: int
    currency: str
    parked_at: datetime
    error: str


class ParkedList(Struct, kw_only=True):
    accounts: list[ParkedAccount]
    payment_events: list[ParkedEvent]


@router.route(
    "GET",
    "/v1/parked",
    summary="Accounts and payment events the worker set aside after an error, oldest first",
    role=Role.TENANT,
    response=ParkedList,
)
async def list_parked(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        accounts, events = await parking.parked(session, tenant_of(request))
    return respond(
        ParkedList(
            accounts=[
                ParkedAccount(
                    id=a.id,
                    name=a.name,
                    parked=schemas.Parked(
                        at=a.parked_at, job=a.parked_job, error=a.parked_error or ""
                    ),
                )
                for a in accounts
                if a.parked_at is not None
            ],
            payment_events=[
                ParkedEvent(
                    id=e.id,
                    account_id=e.account_id,
                    type=e.type,
                    key=e.key,
                    amount_minor=e.amount_minor,
                    currency=e.currency,
                    parked_at=e.parked_at,
                    error=e.parked_error or "",
                )
                for e in events
                if e.parked_at is not None
            ],
        )
    )


@router.route(
    "POST",
    "/v1/accounts/{account_id}/release",
    summary="Release a parked account: catch it up now (and re-queue its parked payment "
    "events; a charge whose outcome the worker could not learn is given up, as looked up by "
    "the tenant); if it fails again it stays parked and the answer says why",
    role=Role.TENANT,
    response=schemas.AccountOut,
    errors=(404, 409),
)
async def release(request: web.Request) -> web.Response:
    view = await parking.release(
        request.app[SESSIONS], tenant_of(request), request.match_info["account_id"],
        real_time(request.app[CLOCK]), account_out,
    )  # fmt: skip
    request.app[PAYMENTS_WAKE].set()
    request.app[OUTBOX_WAKE].set()
    return respond(view)


@router.route(
    "POST",
    "/v1/payment-events/{event_id}/release",
    summary="Release a parked payment event: the payment queue applies it again",
    role=Role.TENANT,
    errors=(404, 409),
    status=204,
)
async def release_event(request: web.Request) -> web.Response:
    raw = request.match_info["event_id"]
    number = serial_id(raw)
    if number is None:
        raise NotFound(f"no payment event {raw!r}")
    async with request.app[SESSIONS]() as session, session.begin():
        await parking.release_event(session, tenant_of(request), number)
    request.app[PAYMENTS_WAKE].set()
    return web.Response(status=204)
