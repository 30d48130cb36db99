"""Catalog versions in SQL, parsed once per process and looked up by date."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import Account, CatalogVersion
from billing_worker.domain.catalog import Catalog, parse_catalog

#: Parsed catalogs by (tenant id, row id); rows are never updated, so entries never go
#: stale. The tenant's random id keeps two databases served by one process (tests,
#: ``tollgate simulate``) from sharing an entry through equal row numbers.
_PARSED: dict[tuple[str, int], Catalog] = {}
_PARSED_LIMIT = 4096


class NoCatalog(LookupError):
    """The tenant has not uploaded a catalog yet."""


@dataclass(frozen=True, slots=True)
class CatalogBook:
    """A tenant's catalog versions. A date before the first version uses the first."""

    dates: tuple[date, ...]
    versions: tuple[Catalog, ...]

    def at(self, day: date) -> Catalog:
        if not self.versions:
            raise NoCatalog("upload a catalog first (PUT /v1/catalog) or create a plan")
        index = bisect.bisect_right(self.dates, day) - 1
        return self.versions[max(index, 0)]

    @property
    def latest(self) -> Catalog:
        return self.at(date.max)


def _parsed(row: CatalogVersion) -> Catalog:
    key = (row.tenant_id, row.id)
    catalog = _PARSED.get(key)
    if catalog is None:
        if len(_PARSED) >= _PARSED_LIMIT:
            _PARSED.clear()
        catalog = _PARSED[key] = parse_catalog(row.document)
    return catalog


async def load_book(session: AsyncSession, tenant_id: str) -> CatalogBook:
    rows = (
        await session.scalars(
            select(CatalogVersion)
            .where(CatalogVersion.tenant_id == tenant_id)
            .order_by(CatalogVersion.effective_date, CatalogVersion.id)
        )
    ).all()
    # The latest upload for an effective date replaces earlier ones for that date.
    latest: dict[date, CatalogVersion] = {}
    for row in rows:
        latest[row.effective_date] = row
    ordered = sorted(latest.items())
    return CatalogBook(
        dates=tuple(day for day, _ in ordered),
        versions=tuple(_parsed(row) for _, row in ordered),
    )


async def store_catalog(
    session: AsyncSession, tenant_id: str, document: dict[str, Any], now: datetime
) -> Catalog:
    """Validate and store a new version (raises CatalogError, storing nothing, if invalid)."""
    catalog = parse_catalog(document)
    row = CatalogVersion(
        tenant_id=tenant_id,
        effective_date=catalog.effective_date,
        document=document,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    _PARSED[(tenant_id, row.id)] = catalog
    return catalog


async def latest_document(session: AsyncSession, tenant_id: str) -> dict[str, Any] | None:
    row = await session.scalar(
        select(CatalogVersion)
        .where(CatalogVersion.tenant_id == tenant_id)
        .order_by(CatalogVersion.effective_date.desc(), CatalogVersion.id.desc())
        .limit(1)
    )
    return None if row is None else dict(row.document)


async def tenant_currencies(session: AsyncSession, tenant_id: str) -> list[str]:
    """Every currency the tenant bills in: its newest catalog's and its accounts'."""
    found = set(
        await session.scalars(
            select(Account.currency).where(Account.tenant_id == tenant_id).distinct()
        )
    )
    try:
        found |= set((await load_book(session, tenant_id)).latest.currencies)
    except NoCatalog:
        pass
    return sorted(found)


@dataclass(frozen=True, slots=True)
class VersionRow:
    id: int
    effective_date: date
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CatalogHistory:
    """A tenant's catalog versions, newest first (at most ``HISTORY_SHOWN``), how many it
    has in all, and the newest one whole."""

    versions: list[VersionRow]
    count: int
    newest: CatalogVersion | None


#: How many catalog versions a history lists.
HISTORY_SHOWN = 50


async def catalog_history(session: AsyncSession, tenant_id: str) -> CatalogHistory:
    versions = (
        await session.execute(
            select(CatalogVersion.id, CatalogVersion.effective_date, CatalogVersion.created_at)
            .where(CatalogVersion.tenant_id == tenant_id)
            .order_by(CatalogVersion.effective_date.desc(), CatalogVersion.id.desc())
            .limit(HISTORY_SHOWN)
        )
    ).all()
    count = await session.scalar(select(func.count()).where(CatalogVersion.tenant_id == tenant_id))
    newest = await session.get(CatalogVersion, versions[0].id) if versions else None
    rows = [VersionRow(v.id, v.effective_date, v.created_at) for v in versions]
    return CatalogHistory(rows, int(count or 0), newest)
