"""Lifecycle events to the tenants' webhook endpoints.

Events are written with the change they report (``billing_worker.db.audit``). The notifier
*fans them out* -- one delivery per endpoint subscribed to the event's type when it runs --
and sends those deliveries like any other: leased, signed with the endpoint's secret,
retried with backoff, each attempt recorded.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from billing_worker.db.models import Delivery, Event, Invoice, WebhookEndpoint
from billing_worker.domain.events import wanted
from billing_worker.domain.invoicing.numbers import display_number
from billing_worker.domain.statuses import DeliveryStatus
from billing_worker.runtime.loop import has_rows


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Extras:
    """What an event's envelope adds from other rows: invoice numbers by invoice id, and
    each event's sequence by its (internal) id."""

    numbers: Mapping[str, str]
    sequences: Mapping[int, int]


def envelope(event: Event, extras: Extras | None = None) -> dict[str, Any]:
    """What an endpoint receives: the event with its opaque id, type, time, tenant,
    account and sequence (1, 2, 3... in the order its account's changes were committed;
    the tenant's own events without an account count apart); an invoice's event also
    carries the invoice's number (``extras_of``)."""
    data, numbers = event.data, extras.numbers if extras else {}
    number = numbers.get(str(data.get("id"))) if data.get("object") == "invoice" else None
    return {
        "id": event.public_id or f"evt_{event.id}",
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "tenant_id": event.tenant_id,
        "account_id": event.account_id,
        "sequence": extras.sequences.get(event.id, 0) if extras else 0,
        "data": {**data, "number": number} if number else data,
    }


async def extras_of(session: AsyncSession, events: Iterable[Event]) -> Extras:
    events = list(events)
    return Extras(await invoice_numbers(session, events), await sequences(session, events))


async def sequences(session: AsyncSession, events: Iterable[Event]) -> dict[int, int]:
    """Each event's rank among its account's events (or, without an account, among its
    tenant's events without one): a receiver orders an account's events by it, and it
    says nothing of any other tenant's."""
    ids = [e.id for e in events]
    if not ids:
        return {}
    earlier = aliased(Event)
    rank = (
        select(func.count())
        .where(
            earlier.tenant_id == Event.tenant_id,
            or_(
                earlier.account_id == Event.account_id,
                and_(earlier.account_id.is_(None), Event.account_id.is_(None)),
            ),
            earlier.id <= Event.id,
        )
        .scalar_subquery()
    )
    rows = await session.execute(select(Event.id, rank).where(Event.id.in_(ids)))
    return {event_id: int(n) for event_id, n in rows}


async def invoice_numbers(session: AsyncSession, events: Iterable[Event]) -> dict[str, str]:
    """The numbers (``INV-000042``) of the issued invoices ``events`` are about: a batch
    job numbers invoices as it commits, after their events were written."""
    ids = {str(e.data.get("id")) for e in events if e.data.get("object") == "invoice"}
    if not ids:
        return {}
    rows = await session.execute(
        select(Invoice.id, Invoice.number).where(Invoice.id.in_(ids), Invoice.number.is_not(None))
    )
    return {
        invoice_id: shown
        for invoice_id, number in rows
        if (shown := display_number(number)) is not None
    }


def subscribed(endpoint: WebhookEndpoint, event_type: str) -> bool:
    return endpoint.disabled_at is None and wanted(endpoint.types, event_type)


def delivery_of(event: Event, endpoint: WebhookEndpoint, now: datetime) -> Delivery:
    return Delivery(
        tenant_id=event.tenant_id,
        event_id=event.id,
        endpoint_id=endpoint.id,
        channel="webhook",
        target=endpoint.url,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


async def fan_out(
    sessions: async_sessionmaker[AsyncSession], now: datetime, *, batch: int = 500
) -> int:
    """Make the deliveries of one batch of new events; returns how many events."""
    if not await has_rows(sessions, Event.fanned_out.is_(False)):
        return 0
    async with sessions() as session, session.begin():
        events = (
            await session.scalars(
                select(Event)
                .where(Event.fanned_out.is_(False))
                .order_by(Event.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        ).all()
        endpoints: dict[str, list[WebhookEndpoint]] = {}
        tenants = {e.tenant_id for e in events}
        for endpoint in await session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.tenant_id.in_(tenants), WebhookEndpoint.disabled_at.is_(None)
            )
        ):
            endpoints.setdefault(endpoint.tenant_id, []).append(endpoint)
        for event in events:
            event.fanned_out = True
            for endpoint in endpoints.get(event.tenant_id, ()):
                if subscribed(endpoint, event.type):
                    session.add(delivery_of(event, endpoint, now))
    return len(events)
