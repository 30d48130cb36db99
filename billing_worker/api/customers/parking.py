"""What the worker parked (see ``billing_worker.runtime.parking``), and releasing it."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from msgspec import Struct
from sqlalchemy import select, update

from billing_worker.api.http import schemas
from billing_worker.api.http.appkeys import CLOCK, OUTBOX_WAKE, PAYMENTS_WAKE, SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, respond, serial_id
from billing_worker.api.http.views import account_out
from billing_worker.db.models import Account, PaymentEvent
from billing_worker.jobs.catch_up import catch_up, real_time
from billing_worker.payments.reconciliation import give_up_unsettled
from billing_worker.publishing.outbox import hold_access
from billing_worker.runtime.parking import describe, park_account, release_account, transient
from billing_worker.services.errors import ApiError, Conflict, NotFound
from billing_worker.services.families import lock_family


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


class StillFailing(ApiError):
    """Releasing it failed again: it stays parked."""

    status = 409
    code = "still_failing"


LIMIT = 500


@router.route(
    "GET",
    "/v1/parked",
    summary="Accounts and payment events the worker set aside after an error, oldest first",
    role=Role.TENANT,
    response=ParkedList,
)
async def list_parked(request: web.Request) -> web.Response:
    tenant_id = tenant_of(request)
    async with request.app[SESSIONS]() as session:
        accounts = (
            await session.scalars(
                select(Account)
                .where(Account.tenant_id == tenant_id, Account.parked_at.is_not(None))
                .order_by(Account.parked_at, Account.id)
                .limit(LIMIT)
            )
        ).all()
        events = (
            await session.scalars(
                select(PaymentEvent)
                .where(PaymentEvent.tenant_id == tenant_id, PaymentEvent.parked_at.is_not(None))
                .order_by(PaymentEvent.parked_at, PaymentEvent.id)
                .limit(LIMIT)
            )
        ).all()
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
    tenant_id, account_id = tenant_of(request), request.match_info["account_id"]
    sessions, real = request.app[SESSIONS], real_time(request.app[CLOCK])
    now = real.now
    try:
        async with sessions() as session, session.begin():
            _tenant, account, _payer = await lock_family(session, tenant_id, account_id)
            if account.parked_at is None:
                raise Conflict(f"account {account_id!r} is not parked")
            await give_up_unsettled(session, account, now)
            release_account(account, now)
            await session.execute(
                update(PaymentEvent)
                .where(PaymentEvent.tenant_id == tenant_id, PaymentEvent.account_id == account_id)
                .values(parked_at=None, parked_error=None)
            )
            await catch_up(session, [account], now, real=real)
            view = await account_out(session, account)
    except ApiError:
        raise
    except Exception as exc:
        if transient(exc):
            raise
        await park_account(sessions, account_id, "release", exc, now, hold=hold_access)
        raise StillFailing(describe(exc)) from exc
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
        event = await session.scalar(
            select(PaymentEvent)
            .where(PaymentEvent.tenant_id == tenant_of(request), PaymentEvent.id == number)
            .with_for_update()
        )
        if event is None:
            raise NotFound(f"no payment event {raw!r}")
        if event.parked_at is None:
            raise Conflict(f"payment event {raw} is not parked")
        event.parked_at = event.parked_error = None
    request.app[PAYMENTS_WAKE].set()
    return web.Response(status=204)
