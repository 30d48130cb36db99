"""Invoice runs: one started for a tenant (or the one for that day still going), the
tenant's runs, and one run's progress."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.models import InvoiceRun
from billing_worker.jobs.invoice_runs import start_run, unfinished
from billing_worker.services.errors import NotFound

#: At most this many runs are listed, newest first.
LISTED = 100


async def start(
    sessions: async_sessionmaker[AsyncSession], now: datetime, tenant_id: str, target: date | None
) -> InvoiceRun:
    """Start a run; a run for the same day still going is the answer (a second would only
    race it)."""
    running = await unfinished(sessions, tenant_id=tenant_id, target=target)
    if running:
        return running[0]
    return await start_run(sessions, now, tenant_id=tenant_id, target=target)


async def runs_of(session: AsyncSession, tenant_id: str) -> list[InvoiceRun]:
    query = (
        select(InvoiceRun)
        .where(InvoiceRun.tenant_id == tenant_id)
        .order_by(InvoiceRun.started_at.desc(), InvoiceRun.id.desc())
        .limit(LISTED)
    )
    return list((await session.scalars(query)).all())


async def tenant_run(session: AsyncSession, tenant_id: str, run_id: str) -> InvoiceRun:
    run = await session.scalar(
        select(InvoiceRun).where(InvoiceRun.tenant_id == tenant_id, InvoiceRun.id == run_id)
    )
    if run is None:
        raise NotFound(f"no invoice run {run_id!r}")
    return run
