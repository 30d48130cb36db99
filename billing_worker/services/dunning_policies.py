"""A tenant's named dunning policies: saved (checked against every currency the tenant bills
in), listed, removed. A change re-evaluates every account of the tenant at once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import Tenant
from billing_worker.domain.dunning import policy_problems
from billing_worker.invoicing.catalogs import tenant_currencies
from billing_worker.services.errors import FieldError, InvalidRequest, NotFound
from billing_worker.standing.entitlements import reevaluate_tenant


def check_name(name: str) -> None:
    if not name or len(name) > 100 or not name.replace("-", "").replace("_", "").isalnum():
        raise InvalidRequest.field("name", "letters, digits, '-' and '_' only, at most 100")


async def _locked_tenant(session: AsyncSession, tenant_id: str) -> Tenant:
    tenant = await session.get(Tenant, tenant_id, with_for_update=True)
    if tenant is None:
        raise NotFound("the key's tenant no longer exists")
    return tenant


async def save_policy(
    session: AsyncSession, tenant_id: str, name: str, document: dict[str, Any], now: datetime
) -> None:
    """Create or replace the policy ``name``."""
    check_name(name)
    tenant = await _locked_tenant(session, tenant_id)
    problems = policy_problems(document, await tenant_currencies(session, tenant.id))
    if problems:
        raise InvalidRequest.fields([FieldError(f, why) for f, why in problems])
    tenant.dunning_policies = {**(tenant.dunning_policies or {}), name: document}
    await reevaluate_tenant(session, tenant.id, now)


async def policies_of(session: AsyncSession, tenant_id: str) -> dict[str, dict[str, Any]]:
    tenant = await session.get(Tenant, tenant_id)
    return dict((tenant.dunning_policies if tenant else None) or {})


async def remove_policy(session: AsyncSession, tenant_id: str, name: str, now: datetime) -> None:
    tenant = await session.get(Tenant, tenant_id, with_for_update=True)
    policies = dict((tenant.dunning_policies if tenant else None) or {})
    if tenant is None or name not in policies:
        raise NotFound(f"no dunning policy {name!r}")
    del policies[name]
    tenant.dunning_policies = policies
    await reevaluate_tenant(session, tenant.id, now)
