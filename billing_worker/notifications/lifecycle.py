"""Lifecycle events to the tenants' webhook endpoints.

Events are written with the change they report (``billing_worker.db.audit``). The notifier
*fans them out* -- one delivery per endpoint subscribed to the event's type when it runs --
and sends those deliveries like any other: leased, signed with the endpoint's secret,
retried with backoff, each attempt recorded.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.models import Delivery, Event, Invoice, WebhookEndpoint
from billing_worker.domain.events import wanted
from billing_worker.domain.invoicing.numbers import display_number
from billing_worker.runtime.loop import has_rows


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def envelope(event: Event, numbers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What an endpoint receives: the event with its id, type, time, tenant, account and
    sequence (increasing in the order an account's changes were committed); an invoice's
    event also carries the invoice's number (from ``numbers``, see ``invoice_numbers``)."""
    data = event.data
    number = (numbers or {}).get(str(data.get("id"))) if data.get("object") == "invoice" else None
    return {
        "id": f"evt_{event.id}",
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "tenant_id": event.tenant_id,
        "account_id": event.account_id,
        "sequence": event.id,
        "data": {**data, "number": number} if number else data,
    }


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
        status="pending",
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
