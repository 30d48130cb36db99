"""A tenant's webhook endpoints and the lifecycle events they receive: endpoints registered,
changed, their secrets rotated; their deliveries and the events listed a page at a time;
an event sent again."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import Delivery, Event, WebhookEndpoint
from billing_worker.domain.events import CATALOGUE
from billing_worker.ids import new_id
from billing_worker.notifications.lifecycle import (
    Extras,
    delivery_of,
    extras_of,
    new_secret,
    subscribed,
)
from billing_worker.services.errors import FieldError, InvalidRequest, NotFound


def check_types(types: Sequence[str]) -> None:
    """Every type named is an event type of the catalogue, or ``*``."""
    unknown = [t for t in types if t != "*" and t not in CATALOGUE]
    if unknown:
        raise InvalidRequest.fields(
            [FieldError("types", f"unknown event type {t!r} (see docs/events.md)") for t in unknown]
        )


async def create_endpoint(
    session: AsyncSession,
    tenant_id: str,
    now: datetime,
    *,
    url: str,
    types: list[str],
    description: str | None,
) -> WebhookEndpoint:
    """Register an endpoint, with a signing secret of its own."""
    check_types(types)
    endpoint = WebhookEndpoint(
        id=new_id("whe"), tenant_id=tenant_id, url=url, types=types, description=description,
        secret=new_secret(), created_at=now,
    )  # fmt: skip
    session.add(endpoint)
    return endpoint


async def endpoints_of(session: AsyncSession, tenant_id: str) -> list[WebhookEndpoint]:
    query = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.tenant_id == tenant_id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return list((await session.scalars(query)).all())


async def locked_endpoint(
    session: AsyncSession, tenant_id: str, endpoint_id: str
) -> WebhookEndpoint:
    found = await session.scalar(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == endpoint_id)
        .with_for_update()
    )
    if found is None:
        raise NotFound(f"no webhook endpoint {endpoint_id!r}")
    return found


async def update_endpoint(
    session: AsyncSession,
    tenant_id: str,
    endpoint_id: str,
    now: datetime,
    changes: Mapping[str, Any],
) -> WebhookEndpoint:
    """Change the fields ``changes`` gives: url, types, description, disabled."""
    if "types" in changes:
        check_types(changes["types"])
    endpoint = await locked_endpoint(session, tenant_id, endpoint_id)
    for name in ("url", "types", "description"):
        if name in changes:
            setattr(endpoint, name, changes[name])
    disabled = changes.get("disabled")
    if disabled is not None and disabled != (endpoint.disabled_at is not None):
        endpoint.disabled_at = now if disabled else None
    return endpoint


async def rotate_secret(session: AsyncSession, tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await locked_endpoint(session, tenant_id, endpoint_id)
    endpoint.secret = new_secret()
    return endpoint


async def deliveries_page(
    session: AsyncSession, tenant_id: str, endpoint_id: str, *, after: int | None, limit: int
) -> Sequence[Row[Delivery, str, str | None]]:
    """The endpoint's deliveries, newest first, from before ``after`` (one more than
    ``limit`` when more follow), each with its event's type and public id."""
    endpoint = await locked_endpoint(session, tenant_id, endpoint_id)
    query = (
        select(Delivery, Event.type, Event.public_id)
        .join(Event, Event.id == Delivery.event_id)
        .where(Delivery.tenant_id == endpoint.tenant_id, Delivery.endpoint_id == endpoint.id)
    )
    if after is not None:
        query = query.where(Delivery.id < after)
    return (await session.execute(query.order_by(Delivery.id.desc()).limit(limit + 1))).all()


async def by_public_id(session: AsyncSession, tenant_id: str, public_id: str) -> Event | None:
    return await session.scalar(
        select(Event).where(Event.tenant_id == tenant_id, Event.public_id == public_id)
    )


async def event(session: AsyncSession, tenant_id: str, public_id: str) -> tuple[Event, Extras]:
    """One of the tenant's events, with what its envelope adds."""
    found = await by_public_id(session, tenant_id, public_id)
    if found is None:
        raise NotFound(f"no event {public_id!r}")
    return found, await extras_of(session, [found])


async def events_page(
    session: AsyncSession,
    tenant_id: str,
    *,
    event_type: str | None,
    account_id: str | None,
    after: str | None,
    limit: int,
) -> tuple[list[Event], Extras, bool]:
    """The tenant's events, newest first, before the one ``after`` names; whether more
    follow."""
    where: list[Any] = [Event.tenant_id == tenant_id]
    if event_type is not None:
        if event_type not in CATALOGUE:
            raise InvalidRequest.field("type", "an event type (see docs/events.md)")
        where.append(Event.type == event_type)
    if account_id is not None:
        where.append(Event.account_id == account_id)
    if after is not None:
        cursor = await by_public_id(session, tenant_id, after)
        if cursor is None:
            raise InvalidRequest.field("after", "must be the id of one of your events")
        where.append(Event.id < cursor.id)
    found = (
        await session.scalars(
            select(Event).where(*where).order_by(Event.id.desc()).limit(limit + 1)
        )
    ).all()
    page = list(found[:limit])
    return page, await extras_of(session, page), len(found) > limit


async def redeliver(
    session: AsyncSession, tenant_id: str, public_id: str, endpoint_id: str | None, now: datetime
) -> int:
    """Send the event again to the endpoint named, or to every enabled endpoint subscribed to
    its type; returns how many deliveries were made."""
    found, _extras = await event(session, tenant_id, public_id)
    endpoints = select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == found.tenant_id)
    if endpoint_id is not None:
        endpoints = endpoints.where(WebhookEndpoint.id == endpoint_id)
    candidates = (await session.scalars(endpoints)).all()
    if endpoint_id is not None and not candidates:
        raise NotFound(f"no webhook endpoint {endpoint_id!r}")
    chosen = [e for e in candidates if endpoint_id is not None or subscribed(e, found.type)]
    for endpoint in chosen:
        session.add(delivery_of(found, endpoint, now))
    return len(chosen)
