"""On SQLite (the default) the worker's writers take turns: a long write transaction makes
the others wait for it, never fail with "database is locked"."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.db.models import Tenant
from billing_worker.ids import new_id


async def test_writers_wait_for_a_long_transaction_instead_of_failing(database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL has row locks; this is about SQLite's single writer")
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    held = asyncio.Event()

    async def long_transaction() -> None:
        async with sessions() as session, session.begin():
            session.add(_tenant("long"))
            await session.flush()
            held.set()
            await asyncio.sleep(6)  # longer than SQLite's usual 5 s busy timeout

    async def short_write(n: int) -> None:
        await held.wait()
        async with sessions() as session, session.begin():
            session.add(_tenant(f"short {n}"))

    try:
        await asyncio.gather(long_transaction(), *(short_write(n) for n in range(10)))
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Tenant)) == 11
    finally:
        await engine.dispose()


def _tenant(name: str) -> Tenant:
    return Tenant(
        id=new_id("ten"), name=name, grace_days=30, net_terms_days=0,
        session_idle_seconds=1800, fail_open_seconds=0, degraded_read_only=True,
        draft_invoices=False, channel_overdue="follow", created_at=datetime.now(UTC),
    )  # fmt: skip
