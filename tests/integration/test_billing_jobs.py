"""Billing jobs are idempotent and safe to run concurrently, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.db.models import Invoice, InvoiceItem
from billing_worker.scheduler import run_due
from shared.clock import ManualClock, SystemClock
from tests.integration.conftest import Stack


async def test_concurrent_requests_all_succeed(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    responses = await asyncio.gather(
        *(
            stack.api.post("/v1/accounts", json={"name": f"Account {n}"}, headers=tenant.admin)
            for n in range(20)
        )
    )
    assert [r.status for r in responses] == [201] * 20


async def test_racing_invoice_runs_bill_each_period_once(stack: Stack, database_url: str) -> None:
    tenant = await stack.new_tenant()
    account_ids = [await stack.customer(tenant, f"user{n}") for n in range(3)]
    later = ManualClock(SystemClock().now() + timedelta(days=95))  # three more months start
    engines = [create_engine(database_url) for _ in range(2)]
    try:
        sessions = [session_factory(engine) for engine in engines]
        for _ in range(2):  # and once more: a re-run bills nothing
            await asyncio.gather(*(run_due(s, later) for s in sessions))
        async with sessions[0]() as session:
            counts = (
                await session.execute(
                    select(Invoice.account_id, func.count())
                    .where(Invoice.account_id.in_(account_ids))
                    .group_by(Invoice.account_id)
                )
            ).all()
            items = (
                await session.execute(
                    select(InvoiceItem.account_id, func.count())
                    .where(InvoiceItem.account_id.in_(account_ids), InvoiceItem.kind == "recurring")
                    .group_by(InvoiceItem.account_id)
                )
            ).all()
            periods = (
                await session.execute(
                    select(InvoiceItem.subscription_id, InvoiceItem.start_date, func.count())
                    .where(InvoiceItem.kind == "recurring")
                    .group_by(InvoiceItem.subscription_id, InvoiceItem.start_date)
                    .having(func.count() > 1)
                )
            ).all()
    finally:
        for engine in engines:
            await engine.dispose()
    # The first month at subscription, then the three missed months, each on its own
    # invoice dated the day it became billable (so an outage never moves a due date).
    assert sorted(n for _account, n in counts) == [4, 4, 4]
    assert sorted(n for _account, n in items) == [4, 4, 4]
    assert periods == []
