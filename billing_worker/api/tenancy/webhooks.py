"""Webhook endpoints and the lifecycle events they receive: register, change, disable and
rotate an endpoint's secret; list events and replay one; see each endpoint's deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from aiohttp import web
from msgspec import UNSET, Meta, Struct, UnsetType, structs

from billing_worker.api.customers.directory import page_size
from billing_worker.api.http.appkeys import CLOCK, SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, decode, respond, serial_id
from billing_worker.api.http.schemas import Body, WebhookUrl
from billing_worker.db.models import Event, WebhookEndpoint
from billing_worker.domain.events import CATALOGUE
from billing_worker.notifications.lifecycle import (
    Extras,
    envelope,
)
from billing_worker.services import webhooks
from billing_worker.services.errors import InvalidRequest

Types = Annotated[list[str], Meta(min_length=1, max_length=len(CATALOGUE) + 1)]


class EndpointCreate(Body):
    url: WebhookUrl
    #: Event types (docs/events.md), or ``["*"]`` for every type.
    types: Types = msgspec.field(default_factory=lambda: ["*"])
    description: Annotated[str, Meta(max_length=200)] | None = None


class EndpointUpdate(Body):
    url: WebhookUrl | UnsetType = UNSET
    types: Types | UnsetType = UNSET
    description: Annotated[str, Meta(max_length=200)] | UnsetType | None = UNSET
    #: Stop (true) or restart (false) deliveries to it.
    disabled: bool | UnsetType = UNSET


class EndpointOut(Struct, kw_only=True):
    id: str
    url: str
    types: list[str]
    description: str | None
    created_at: datetime
    disabled_at: datetime | None


class EndpointWithSecret(EndpointOut, kw_only=True):
    #: Verifies the ``Tollgate-Signature`` of each delivery; shown only here and on rotation.
    secret: str


class EndpointList(Struct, kw_only=True):
    data: list[EndpointOut]


class EventOut(Struct, kw_only=True):
    id: str
    type: str
    created_at: datetime
    tenant_id: str
    account_id: str | None
    #: 1, 2, 3... in the order the account's changes were committed (the tenant's events
    #: without an account are counted apart).
    sequence: int
    data: dict[str, Any]


class EventPage(Struct, kw_only=True):
    data: list[EventOut]
    #: Pass as ``after`` for the next page; null on the last one.
    next: str | None


class DeliveryRow(Struct, kw_only=True):
    id: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryPage(Struct, kw_only=True):
    data: list[DeliveryRow]
    next: str | None


class Redelivery(Body):
    #: Only to this endpoint (even one not subscribed to the type); default: every
    #: enabled endpoint subscribed to the event's type.
    endpoint_id: str | None = None


class Redelivered(Struct, kw_only=True):
    deliveries: int


def _out(endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut(
        id=endpoint.id, url=endpoint.url, types=list(endpoint.types),
        description=endpoint.description, created_at=endpoint.created_at,
        disabled_at=endpoint.disabled_at,
    )  # fmt: skip


def _with_secret(endpoint: WebhookEndpoint) -> EndpointWithSecret:
    return EndpointWithSecret(**structs.asdict(_out(endpoint)), secret=endpoint.secret)


def _event_out(event: Event, extras: Extras) -> EventOut:
    return EventOut(**envelope(event, extras))


@router.route(
    "POST",
    "/v1/webhook-endpoints",
    summary="Register a URL to receive lifecycle events (all, or the types listed), signed "
    "with a secret of its own shown in this answer only",
    role=Role.TENANT,
    request=EndpointCreate,
    response=EndpointWithSecret,
    status=201,
    errors=(422,),
)
async def create_endpoint(request: web.Request) -> web.Response:
    body = await decode(request, EndpointCreate)
    async with request.app[SESSIONS]() as session, session.begin():
        endpoint = await webhooks.create_endpoint(
            session, tenant_of(request), request.app[CLOCK].now(), url=body.url,
            types=body.types, description=body.description,
        )  # fmt: skip
    return respond(_with_secret(endpoint), 201)


@router.route(
    "GET",
    "/v1/webhook-endpoints",
    summary="The tenant's webhook endpoints (never their secrets)",
    role=Role.TENANT,
    response=EndpointList,
)
async def list_endpoints(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        found = await webhooks.endpoints_of(session, tenant_of(request))
        return respond(EndpointList(data=[_out(e) for e in found]))


@router.route(
    "PATCH",
    "/v1/webhook-endpoints/{endpoint_id}",
    summary="Change an endpoint's URL, types or description, or disable (re-enable) it",
    role=Role.TENANT,
    request=EndpointUpdate,
    response=EndpointOut,
    errors=(404, 422),
)
async def update_endpoint(request: web.Request) -> web.Response:
    body = await decode(request, EndpointUpdate)
    changes = {k: v for k, v in structs.asdict(body).items() if v is not UNSET}
    async with request.app[SESSIONS]() as session, session.begin():
        endpoint = await webhooks.update_endpoint(
            session, tenant_of(request), request.match_info["endpoint_id"],
            request.app[CLOCK].now(), changes,
        )  # fmt: skip
        out = _out(endpoint)
    return respond(out)


@router.route(
    "POST",
    "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
    summary="Give an endpoint a new signing secret (shown in this answer only); deliveries "
    "are signed with it from now on",
    role=Role.TENANT,
    response=EndpointWithSecret,
    errors=(404,),
)
async def rotate_secret(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session, session.begin():
        endpoint = await webhooks.rotate_secret(
            session, tenant_of(request), request.match_info["endpoint_id"]
        )
        out = _with_secret(endpoint)
    return respond(out)


@router.route(
    "GET",
    "/v1/webhook-endpoints/{endpoint_id}/deliveries",
    summary="An endpoint's deliveries, newest first, a page at a time (?limit=, ?after=): "
    "each event's status, attempts and last error",
    role=Role.TENANT,
    response=DeliveryPage,
    errors=(404, 422),
)
async def list_deliveries(request: web.Request) -> web.Response:
    limit, raw_after = page_size(request), request.query.get("after")
    after = serial_id(raw_after) if raw_after is not None else None
    if raw_after is not None and after is None:
        raise InvalidRequest.field("after", "must be a delivery's id")
    async with request.app[SESSIONS]() as session:
        rows = await webhooks.deliveries_page(
            session, tenant_of(request), request.match_info["endpoint_id"], after=after,
            limit=limit,
        )  # fmt: skip
    data = [
        DeliveryRow(
            id=d.id,
            event_id=public_id or f"evt_{d.event_id}",
            event_type=kind,
            status=d.status,
            attempts=d.attempts,
            last_error=d.last_error,
            next_attempt_at=d.next_attempt_at,
            delivered_at=d.delivered_at,
            created_at=d.created_at,
        )
        for d, kind, public_id in rows[:limit]
    ]
    more = len(rows) > limit
    return respond(DeliveryPage(data=data, next=str(data[-1].id) if more else None))


@router.route(
    "GET",
    "/v1/events",
    summary="The tenant's lifecycle events, newest first, a page at a time (?limit=, "
    "?after=<event id>), filtered by ?type= and ?account_id=",
    role=Role.TENANT,
    response=EventPage,
    errors=(422,),
)
async def list_events(request: web.Request) -> web.Response:
    limit, query = page_size(request), request.query
    async with request.app[SESSIONS]() as session:
        events, extras, more = await webhooks.events_page(
            session, tenant_of(request), event_type=query.get("type"),
            account_id=query.get("account_id"), after=query.get("after"), limit=limit,
        )  # fmt: skip
    data = [_event_out(e, extras) for e in events]
    return respond(EventPage(data=data, next=data[-1].id if more else None))


@router.route(
    "GET",
    "/v1/events/{lifecycle_event_id}",
    summary="One lifecycle event, as its endpoints receive it",
    role=Role.TENANT,
    response=EventOut,
    errors=(404,),
)
async def get_event(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        found, extras = await webhooks.event(
            session, tenant_of(request), request.match_info["lifecycle_event_id"]
        )
        return respond(_event_out(found, extras))


@router.route(
    "POST",
    "/v1/events/{lifecycle_event_id}/redeliver",
    summary="Send an event again: to every enabled endpoint subscribed to its type, or to the "
    "one named",
    role=Role.TENANT,
    request=Redelivery,
    response=Redelivered,
    status=202,
    errors=(404,),
)
async def redeliver(request: web.Request) -> web.Response:
    body = await decode(request, Redelivery)
    async with request.app[SESSIONS]() as session, session.begin():
        count = await webhooks.redeliver(
            session, tenant_of(request), request.match_info["lifecycle_event_id"],
            body.endpoint_id, request.app[CLOCK].now(),
        )  # fmt: skip
    return respond(Redelivered(deliveries=count), 202)
