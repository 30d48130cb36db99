"""Billing jobs are idempotent and safe to run concurrently, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.db.models import Invoice, InvoiceItem
from billing_worker.jobs import catch_up
from billing_worker.jobs.scheduler import run_due
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


async def test_a_long_catch_up_is_split_over_passes_and_bills_each_period_once(
    stack: Stack, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catch_up, "MOMENTS_PER_PASS", 10)
    tenant = await stack.new_tenant()
    account = await stack.customer(tenant, "late")
    later = ManualClock(SystemClock().now() + timedelta(days=370))  # a year the worker missed
    engine = create_engine(database_url)
    try:
        sessions = session_factory(engine)

        async def invoices() -> int:
            async with sessions() as session:
                found = await session.scalar(
                    select(func.count()).where(Invoice.account_id == account)
                )
                return int(found or 0)

        await run_due(sessions, later)
        after_one_pass = await invoices()
        passes = 1
        while await run_due(sessions, later):
            passes += 1
            assert passes < 200, "the catch-up never finished"
        # 10 moments a pass (a month's invoice, daily reminders, the suspension): more than
        # one pass, and in the end the first month plus the twelve or thirteen months after
        # it, each invoiced once
        assert after_one_pass < await invoices()
        assert await invoices() in (13, 14)
        async with sessions() as session:
            twice = (
                await session.execute(
                    select(InvoiceItem.start_date, func.count())
                    .where(InvoiceItem.account_id == account, InvoiceItem.kind == "recurring")
                    .group_by(InvoiceItem.start_date)
                    .having(func.count() > 1)
                )
            ).all()
        assert twice == []
    finally:
        await engine.dispose()
