"""The advisory messages a tenant was sent (reminders, standing changes, payment news),
each with its deliveries by webhook and email."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import Delivery, Message

#: At most this many messages are listed, newest first.
LISTED = 200


async def messages_of(
    session: AsyncSession, tenant_id: str, account_id: str | None
) -> list[tuple[Message, list[Delivery]]]:
    """The tenant's messages (to one account, when given), newest first, with their
    deliveries."""
    query = select(Message).where(Message.tenant_id == tenant_id)
    if account_id is not None:
        query = query.where(Message.account_id == account_id)
    messages = (
        await session.scalars(
            query.order_by(Message.created_at.desc(), Message.id.desc()).limit(LISTED)
        )
    ).all()
    deliveries = (
        await session.scalars(
            select(Delivery)
            .where(Delivery.tenant_id == tenant_id,
                   Delivery.message_id.in_([m.id for m in messages]))
            .order_by(Delivery.id)
        )
    ).all()  # fmt: skip
    by_message: dict[str, list[Delivery]] = {}
    for delivery in deliveries:
        by_message.setdefault(delivery.message_id or "", []).append(delivery)
    return [(m, by_message.get(m.id, [])) for m in messages]
