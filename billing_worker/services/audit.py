"""The audit log read back: who changed what and when, newest first, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import AuditEntry


@dataclass(frozen=True, slots=True)
class AuditFilter:
    object_type: str | None = None
    object_id: str | None = None
    actor_id: str | None = None
    actor_kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def audit_page(
    session: AsyncSession, tenant_id: str, wanted: AuditFilter, *, after: int | None, limit: int
) -> tuple[list[AuditEntry], bool]:
    """The tenant's audit entries, newest first, before ``after``; whether more follow."""
    where: list[Any] = [AuditEntry.tenant_id == tenant_id]
    for value, column in (
        (wanted.object_type, AuditEntry.object_type),
        (wanted.object_id, AuditEntry.object_id),
        (wanted.actor_id, AuditEntry.actor_id),
        (wanted.actor_kind, AuditEntry.actor_kind),
    ):
        if value is not None:
            where.append(column == value)
    where += [AuditEntry.at >= wanted.since] if wanted.since else []
    where += [AuditEntry.at <= wanted.until] if wanted.until else []
    if after is not None:
        where.append(AuditEntry.id < after)
    query = select(AuditEntry).where(*where).order_by(AuditEntry.id.desc()).limit(limit + 1)
    found = (await session.scalars(query)).all()
    return list(found[:limit]), len(found) > limit
