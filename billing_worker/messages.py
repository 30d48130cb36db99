"""Advisory messages: what the ladder and the payments tell a tenant's administrators.

A message is written in the same transaction as the change it reports, with one delivery
row per destination (the tenant's webhook, each administrator address, and the account's
billing contact when the tenant asks for it). ``dedup_key`` makes it at most once: a
reminder's key is the account and its local day, so a re-run or a restart sends no second
reminder that day. ``billing_worker.notifier`` delivers.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from billing_worker.db.models import Account, Delivery, Message, Tenant
from billing_worker.ids import new_id


class Kind(StrEnum):
    PAYMENT_DUE = "payment_due"
    STANDING_CHANGED = "standing_changed"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_RECOVERED = "payment_recovered"


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget_staged(session: Session) -> None:
    session.info.pop("staged_messages", None)


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
) -> Message | None:
    """Write the message and its deliveries, unless one with ``dedup_key`` exists.

    Nothing is flushed here: a batch job writes its whole batch in one flush at the end, so
    keys staged earlier in this transaction are remembered in the session. A batch job
    passes the keys it loaded for its accounts (``known``) instead of a query per message.
    """
    staged: set[str] = session.info.setdefault("staged_messages", set())
    if dedup_key in staged:
        return None
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
        return None
    staged.add(dedup_key)
    message = Message(
        id=new_id("msg"),
        tenant_id=tenant.id,
        account_id=account.id,
        kind=kind.value,
        dedup_key=dedup_key,
        payload={
            "id": "",  # set below, once the id is known
            "type": kind.value,
            "created_at": now.isoformat(),
            "account": {
                "id": account.id,
                "external_id": account.external_id,
                "name": account.name,
            },
            **details,
        },
        created_at=now,
    )
    message.payload = {**message.payload, "id": message.id}
    session.add(message)
    targets = [("webhook", tenant.notify_webhook_url)] if tenant.notify_webhook_url else []
    targets += [("email", address) for address in tenant.notify_emails or ()]
    contact = account.email if tenant.notify_customer else None
    if contact and contact not in (tenant.notify_emails or ()):
        targets.append(("email", contact))
    for channel, target in targets:
        session.add(
            Delivery(
                tenant_id=tenant.id,
                message=message,
                channel=channel,
                target=target,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return message
