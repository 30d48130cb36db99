"""A tenant's API keys: issued (the whole key shown once, only a hash of its secret kept),
listed, revoked -- at once on the API and, for a gateway key, on every gateway. The last
admin key cannot be revoked."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import ApiKey, Tenant
from billing_worker.publishing.outbox import stage_api_key
from billing_worker.services.errors import Conflict, NotFound
from shared.credentials import IssuedKey, KeyKind, issue_key


def add_key(
    session: AsyncSession, tenant_id: str, kind: KeyKind, now: datetime
) -> tuple[ApiKey, IssuedKey]:
    """A new key of ``kind``, staged for the gateways when it is a gateway key."""
    issued = issue_key()
    key = ApiKey(id=issued.key_id, tenant_id=tenant_id, kind=kind.value,
                 secret_hash=issued.secret_hash, version=1, created_at=now)  # fmt: skip
    session.add(key)
    stage_api_key(session, key, now)
    return key, issued


async def keys_of(session: AsyncSession, tenant_id: str) -> list[ApiKey]:
    """The tenant's keys, revoked ones included, oldest first."""
    query = (
        select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at, ApiKey.id)
    )
    return list((await session.scalars(query)).all())


async def revoke_key(session: AsyncSession, tenant_id: str, key_id: str, now: datetime) -> ApiKey:
    """Revoke the key (once; revoking it again changes nothing)."""
    # The tenant row serializes revocations, so two at once cannot revoke both of the last
    # two admin keys.
    await session.get(Tenant, tenant_id, with_for_update=True)
    key = await session.scalar(
        select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id).with_for_update()
    )
    if key is None:
        raise NotFound(f"no key {key_id!r}")
    if key.revoked_at is not None:
        return key
    if key.kind == "admin":
        others = await session.scalar(
            select(func.count())
            .select_from(ApiKey)
            .where(
                ApiKey.tenant_id == tenant_id,
                ApiKey.kind == "admin",
                ApiKey.revoked_at.is_(None),
                ApiKey.id != key.id,
            )
        )
        if not others:
            raise Conflict("this is the tenant's last admin key: issue another before revoking it")
    key.revoked_at, key.version = now, key.version + 1
    stage_api_key(session, key, now)
    return key
