"""Tenants: created by the operator with an admin key, a gateway key and their webhook
secrets (each shown once); read and changed by their own admin key (a change re-publishes
every account); a lost secret replaced."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import WITH_SECRETS, Tenant
from billing_worker.ids import new_id
from billing_worker.notifications.lifecycle import new_secret
from billing_worker.services.errors import NotFound
from billing_worker.services.keys import add_key
from billing_worker.standing.entitlements import reevaluate_tenant
from shared.credentials import IssuedKey, KeyKind

#: The secrets a tenant can have replaced.
ROTATABLE = ("webhook_secret", "provider_webhook_secret")


async def create_tenant(
    session: AsyncSession, settings: Mapping[str, Any], now: datetime
) -> tuple[Tenant, IssuedKey, IssuedKey]:
    """A tenant with the given settings, its admin key and its gateway key."""
    tenant = Tenant(
        id=new_id("ten"), **settings, webhook_secret=new_secret(),
        provider_webhook_secret=new_secret(), stripe_secret_key=None,
        stripe_webhook_secret=None, created_at=now,
    )  # fmt: skip
    session.add(tenant)
    await session.flush()
    _, admin = add_key(session, tenant.id, KeyKind.ADMIN, now)
    _, gateway = add_key(session, tenant.id, KeyKind.GATEWAY, now)
    return tenant, admin, gateway


async def own_tenant(session: AsyncSession, tenant_id: str, *, lock: bool = False) -> Tenant:
    """The calling key's tenant (with its secrets)."""
    tenant = await session.get(Tenant, tenant_id, with_for_update=lock, options=[WITH_SECRETS])
    if tenant is None:
        raise NotFound("the key's tenant no longer exists")
    return tenant


async def update_tenant(
    session: AsyncSession, tenant_id: str, changes: Mapping[str, Any], now: datetime
) -> Tenant:
    """Apply the settings ``changes`` gives and re-evaluate every account."""
    tenant = await own_tenant(session, tenant_id, lock=True)
    for name, value in changes.items():
        setattr(tenant, name, value)
    await reevaluate_tenant(session, tenant.id, now)
    return tenant


async def rotate_secret(session: AsyncSession, tenant_id: str, name: str) -> str:
    """Give the tenant a new ``name`` secret; returns it (shown this once)."""
    if name not in ROTATABLE:
        raise NotFound(f"no secret {name!r}: webhook_secret or provider_webhook_secret")
    tenant = await own_tenant(session, tenant_id, lock=True)
    secret = new_secret()
    setattr(tenant, name, secret)
    return secret
