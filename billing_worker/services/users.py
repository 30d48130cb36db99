"""An account's end users: listed, disabled or re-enabled, their email changed, removed.
Every change is published to the gateways (a disabled user is denied ``user_disabled``, a
removed one is answered as one that never existed)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import Account, User
from billing_worker.publishing.outbox import stage_user
from billing_worker.services.errors import NotFound
from shared.states import UserStatus

#: Says a change leaves a field as it is.
KEEP = object()


async def users_of(session: AsyncSession, account: Account) -> list[User]:
    """The account's users (a removed one is not listed), by external id."""
    query = (
        select(User)
        .where(
            User.tenant_id == account.tenant_id,
            User.account_id == account.id,
            User.status != UserStatus.DELETED.value,
        )
        .order_by(User.external_id)
    )
    return list((await session.scalars(query)).all())


async def _locked_user(session: AsyncSession, tenant_id: str, user_id: str) -> User:
    user = await session.scalar(
        select(User)
        .where(
            User.tenant_id == tenant_id,
            User.id == user_id,
            User.status != UserStatus.DELETED.value,
        )
        .with_for_update()
    )
    if user is None:
        raise NotFound(f"no user {user_id!r}")
    return user


async def update_user(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    now: datetime,
    *,
    status: str | None = None,
    email: str | object | None = KEEP,
) -> User:
    """Set the user's status and (unless ``KEEP``) email, and publish it."""
    user = await _locked_user(session, tenant_id, user_id)
    if status is not None:
        user.status = status
    if email is not KEEP:
        user.email = email  # type: ignore[assignment]  # a str or None, given
    user.version += 1
    stage_user(session, user, now)
    return user


async def remove_user(session: AsyncSession, tenant_id: str, user_id: str, now: datetime) -> None:
    """Remove the user, and publish that."""
    await update_user(session, tenant_id, user_id, now, status=UserStatus.DELETED.value)
