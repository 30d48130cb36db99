"""Deliver advisory messages (signed webhooks and email) and lifecycle events (to the
tenants' webhook endpoints, ``notifications.lifecycle``), retried with backoff.

A delivery is leased before it is sent (its next attempt moved out of reach), so two
workers never send it at once and no network call happens inside a transaction; the result
is written after. A failed attempt is retried on ``RETRY_SCHEDULE`` — 1 min, 5 min, 30 min,
2 h, 5 h, 10 h, 12 h, 12 h, 15 h, 16 h after each failure — so a receiver that is down for a
weekend still gets it: the last attempt comes about three days after the first, then it is
marked failed (and can be sent again by hand). Every attempt's outcome is visible through
``GET /v1/messages`` and the endpoint's deliveries.
"""

from __future__ import annotations

import asyncio
import html
import logging
import smtplib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.models import Delivery, Event, Message, Tenant, WebhookEndpoint
from billing_worker.domain.statuses import DeliveryStatus
from billing_worker.notifications.destinations import Destinations, GuardedResolver
from billing_worker.notifications.lifecycle import envelope, extras_of, fan_out
from billing_worker.notifications.signing import HEADER, sign
from billing_worker.runtime.loop import has_rows, repeat
from billing_worker.runtime.parking import describe
from shared.clock import Clock

log = logging.getLogger(__name__)

#: The wait after each failed attempt: growing, about three days in all.
RETRY_SCHEDULE = tuple(timedelta(minutes=m) for m in (1, 5, 30, 120, 300, 600, 720, 720, 900, 960))
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
LEASE = timedelta(minutes=5)


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt."""
    return RETRY_SCHEDULE[min(max(attempts, 1), len(RETRY_SCHEDULE)) - 1]


@dataclass(frozen=True, slots=True)
class Outgoing:
    delivery_id: int
    channel: str
    target: str
    payload: dict[str, Any]
    secret: str | None


_SUBJECTS = {
    "payment_due": "Payment due: {name} owes {balance} ({days} days past due)",
    "standing_changed": "{name} is now {standing} ({reason})",
    "payment_failed": "Payment failed for {name}: {decline_reason}",
    "payment_recovered": "Payment received from {name}: {amount} {currency}",
}


def render(payload: dict[str, Any]) -> tuple[str, str, str]:
    """Subject, plain text and HTML of a message."""
    account = payload.get("account", {})
    values = {
        "name": account.get("name") or account.get("id"),
        "balance": payload.get("balance_due") or "0",
        "days": payload.get("days_past_due", 0),
        "standing": payload.get("standing"),
        "reason": payload.get("reason"),
        "decline_reason": payload.get("decline_reason"),
        "amount": payload.get("amount"),
        "currency": payload.get("currency"),
    }
    subject = _SUBJECTS.get(payload["type"], "{name}: " + payload["type"]).format(**values)
    rows = [(k, v) for k, v in payload.items() if k not in ("account", "id") and v is not None]
    rows.insert(0, ("account", f"{values['name']} ({account.get('id')})"))
    text = subject + "\n\n" + "\n".join(f"{k}: {v}" for k, v in rows) + "\n"
    cells = "".join(
        f"<tr><th align='left'>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    body = f"<html><body><h2>{html.escape(subject)}</h2><table>{cells}</table></body></html>"
    return subject, text, body


def _send_email(smtp_url: str, sender: str, to: str, payload: dict[str, Any]) -> None:
    parts = urlsplit(smtp_url)
    subject, text, body = render(payload)
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = sender, to, subject
    email["Message-ID"] = f"<{payload['id']}@tollgate>"
    email.set_content(text)
    email.add_alternative(body, subtype="html")
    with smtplib.SMTP(parts.hostname or "127.0.0.1", parts.port or 25, timeout=10) as smtp:
        smtp.send_message(email)


class Notifier:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        interval: float,
        smtp_url: str | None,
        mail_from: str,
        destinations: Destinations | None = None,
    ) -> None:
        self._destinations = destinations or Destinations()
        self._sessions = sessions
        self._clock = clock
        self._interval = interval
        self._smtp_url = smtp_url
        self._from = mail_from
        self.wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self._destinations))
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            await repeat("notifier", lambda: self.step(http), stop,
                         interval=self._interval, wake=self.wake)  # fmt: skip

    async def step(self, http: aiohttp.ClientSession) -> int:
        """Fan new lifecycle events out to their endpoints, then send what is due."""
        return await fan_out(self._sessions, self._clock.now()) + await self.deliver_due(http)

    async def deliver_due(self, http: aiohttp.ClientSession, *, batch: int = 20) -> int:
        """Lease, send and record one batch of due deliveries; returns how many."""
        now = self._clock.now()
        due = (Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at <= now)
        if not await has_rows(self._sessions, *due):
            return 0
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(
                        Delivery,
                        Message.payload,
                        Event,
                        Tenant.webhook_secret,
                        WebhookEndpoint.secret,
                    )
                    .outerjoin(Message, Message.id == Delivery.message_id)
                    .outerjoin(Event, Event.id == Delivery.event_id)
                    .outerjoin(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
                    .join(Tenant, Tenant.id == Delivery.tenant_id)
                    .where(*due)
                    .order_by(Delivery.next_attempt_at, Delivery.id)
                    .limit(batch)
                    .with_for_update(of=Delivery, skip_locked=True)
                )
            ).all()
            extras = await extras_of(session, (row[2] for row in rows if row[2]))
            outgoing = []
            for delivery, payload, event, tenant_secret, endpoint_secret in rows:
                delivery.next_attempt_at = now + LEASE
                body = envelope(event, extras) if event is not None else payload
                secret = endpoint_secret if event is not None else tenant_secret
                outgoing.append(
                    Outgoing(delivery.id, delivery.channel, delivery.target, body, secret)
                )
        for item in outgoing:
            error = await self._send(http, item)
            await self._record(item.delivery_id, error, self._clock.now())
        return len(outgoing)

    async def _send(self, http: aiohttp.ClientSession, item: Outgoing) -> str | None:
        """Send one; the error (None: delivered)."""
        try:
            if item.channel == "webhook":
                refused = self._destinations.refusal(urlsplit(item.target).hostname)
                if refused:  # an IP literal: no resolver is asked, so it is checked here
                    return refused
                body = orjson.dumps(item.payload)
                headers = {"Content-Type": "application/json"}
                if item.secret:
                    headers[HEADER] = sign(item.secret, int(time.time()), body)
                async with http.post(item.target, data=body, headers=headers) as response:
                    if response.status >= 300:
                        return f"HTTP {response.status}"
                return None
            if self._smtp_url is None:
                return "email is not configured (TOLLGATE_SMTP_URL)"
            await asyncio.to_thread(
                _send_email, self._smtp_url, self._from, item.target, item.payload
            )
            return None
        except (aiohttp.ClientError, TimeoutError, OSError, smtplib.SMTPException) as exc:
            return describe(exc)
        except Exception as exc:
            # The message could not even be built or addressed (a name no header may
            # hold, a host no resolver accepts): this delivery's error, never the worker's.
            log.warning("notifier.unsendable delivery=%s", item.delivery_id, exc_info=exc)
            return describe(exc)

    async def _record(self, delivery_id: int, error: str | None, now: datetime) -> None:
        async with self._sessions() as session, session.begin():
            delivery = await session.get(Delivery, delivery_id, with_for_update=True)
            if delivery is None:
                return
            delivery.attempts += 1
            delivery.last_error = error
            if error is None:
                delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
                    DeliveryStatus.DELIVERED, now, None,
                )  # fmt: skip
            elif delivery.attempts >= MAX_ATTEMPTS:
                delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
            else:
                delivery.next_attempt_at = now + backoff(delivery.attempts)
            log.info(
                "notifier.delivery id=%s channel=%s status=%s error=%s",
                delivery.id, delivery.channel, delivery.status, error,
            )  # fmt: skip
