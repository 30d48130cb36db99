"""Advisory messages: what the ladder and the payments tell a tenant's administrators.

A message is written in the same transaction as the change it reports, with one delivery
row per destination (the tenant's webhook, each administrator address, and the account's
billing contact when the tenant asks for it). ``dedup_key`` makes it at most once: a
reminder's key is the account and its local day, so a re-run or a restart sends no second
reminder that day. ``billing_worker.notifications.notifier`` delivers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from billing_worker.db.models import Account, Delivery, Message, Tenant
from billing_worker.db.unit_of_work import Step, staged
from billing_worker.ids import new_id


class Kind(StrEnum):
    PAYMENT_DUE = "payment_due"
    STANDING_CHANGED = "standing_changed"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_RECOVERED = "payment_recovered"


async def stage_message(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    kind: Kind,
    dedup_key: str,
    details: dict[str, Any],
    now: datetime,
    *,
    known: set[str] | None = None,
    latest_only: bool = False,
) -> bool:
    """Stage the message and its deliveries, unless one with ``dedup_key`` exists; they
    are written when the transaction commits. Returns whether it was staged.

    Keys staged earlier in the transaction are remembered in the session. A batch job
    passes the keys it loaded for its accounts (``known``) instead of a query per message.
    ``latest_only`` (a moment processed late): a later message of the same kind to the same
    account in the transaction replaces this one, so an outage's backlog of reminders
    becomes the latest reminder, and its changes of standing one change from the first
    standing to the last (none when they come back to where they began).
    """
    pending = staged(session, Step.MESSAGES, _Pending)
    if dedup_key in pending.keys:
        return False
    if known is not None:
        seen = dedup_key if dedup_key in known else None
    else:
        with session.no_autoflush:
            seen = await session.scalar(
                select(Message.id).where(
                    Message.tenant_id == tenant.id, Message.dedup_key == dedup_key
                )
            )
    if seen is not None:
        return False
    pending.keys.add(dedup_key)
    message_id = new_id("msg")
    payload = {
        "id": message_id,
        "type": kind.value,
        "created_at": now.isoformat(),
        "account": {"id": account.id, "external_id": account.external_id, "name": account.name},
        **details,
    }
    message = {"id": message_id, "tenant_id": tenant.id, "account_id": account.id,
               "kind": kind.value, "dedup_key": dedup_key, "payload": payload,
               "created_at": now}  # fmt: skip
    targets = [("webhook", tenant.notify_webhook_url)] if tenant.notify_webhook_url else []
    targets += [("email", address) for address in tenant.notify_emails or ()]
    contact = account.email if tenant.notify_customer else None
    if contact and contact not in (tenant.notify_emails or ()):
        targets.append(("email", contact))
    deliveries = [
        {"tenant_id": tenant.id, "message_id": message_id, "channel": channel,
         "target": target, "status": "pending", "attempts": 0, "next_attempt_at": now,
         "created_at": now}
        for channel, target in targets
    ]  # fmt: skip
    if latest_only:
        pending.supersede((account.id, kind), message, deliveries)
    else:
        pending.messages.append(message)
        pending.deliveries += deliveries
    return True


@dataclass(slots=True)
class _Pending:
    """Messages and deliveries staged in a transaction, inserted when it commits: one
    ``INSERT`` for the messages and one for their deliveries (a batch job stages one per
    account, and an ORM object each cost it a tenth of its time)."""

    #: The dedup keys staged in the transaction.
    keys: set[str] = field(default_factory=set)
    messages: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    #: The latest late message of each (account, kind), with its deliveries.
    latest: dict[tuple[str, Kind], tuple[dict[str, Any], list[dict[str, Any]]]] = field(
        default_factory=dict
    )

    def supersede(
        self, key: tuple[str, Kind], message: dict[str, Any], deliveries: list[dict[str, Any]]
    ) -> None:
        earlier = self.latest.get(key)
        if earlier is not None and key[1] is Kind.STANDING_CHANGED:
            first = earlier[0]["payload"]["previous_standing"]
            message["payload"]["previous_standing"] = first
        self.latest[key] = (message, deliveries)

    def rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        messages, deliveries = list(self.messages), list(self.deliveries)
        for message, its in self.latest.values():
            payload = message["payload"]
            if payload.get("previous_standing", object()) == payload.get("standing"):
                continue  # back where it began: nothing to tell
            messages.append(message)
            deliveries += its
        return messages, deliveries

    def write(self, session: Session) -> None:
        messages, deliveries = self.rows()
        if messages:
            session.execute(insert(Message), messages)
        if deliveries:
            session.execute(insert(Delivery), deliveries)

    def committed(self, session: Session) -> None:
        pass
