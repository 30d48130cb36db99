"""One account's bad data never stops the worker: the job parks that account (or payment
event), carries on with every other, and the tenant sees why and releases it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.db.models import Account, Invoice, InvoiceRun, PaymentEvent
from billing_worker.jobs.invoice_runs import resume_run, start_run
from billing_worker.payments.payment_queue import RECEIVED, drain
from shared.clock import ManualClock, SystemClock
from tests.integration.conftest import Stack, Tenant

#: A time zone no resolver knows: any job that computes the account's local day fails.
NOWHERE = "Nowhere/Atlantis"


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


async def _set_timezone(
    sessions: async_sessionmaker[AsyncSession], account_id: str, zone: str
) -> None:
    """Corrupt (or repair) an account behind the API's back, as a bad migration might."""
    async with sessions() as session, session.begin():
        await session.execute(update(Account).where(Account.id == account_id).values(timezone=zone))


async def _invoices(sessions: async_sessionmaker[AsyncSession], account_id: str) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(Invoice).where(Invoice.account_id == account_id)
            )
            or 0
        )


async def _get(stack: Stack, tenant: Tenant, path: str) -> Any:
    response = await stack.api.get(path, headers=tenant.admin)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_the_scheduler_parks_a_failing_account_and_bills_every_other(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    poisoned, healthy = await stack.new_tenant("Poisoned"), await stack.new_tenant("Healthy")
    bad = await stack.customer(poisoned, "ann")
    neighbour = await stack.customer(poisoned, "bob")
    elsewhere = await stack.customer(healthy, "cy")
    await _set_timezone(sessions, bad, NOWHERE)

    moved = await stack.api.post(
        "/v1/test/clock", json={"advance_days": 35}, headers=stack.operator
    )
    assert moved.status == 200
    settled = await stack.api.post("/v1/test/settle", headers=poisoned.admin)
    assert settled.status == 200, await settled.text()

    # The neighbour in the same tenant and the other tenant's account were billed again.
    assert await _invoices(sessions, neighbour) == 2
    assert await _invoices(sessions, elsewhere) == 2
    assert await _invoices(sessions, bad) == 1
    parked = await _get(stack, poisoned, "/v1/parked")
    assert [a["id"] for a in parked["accounts"]] == [bad]
    assert parked["accounts"][0]["parked"]["job"] == "scheduler"
    assert NOWHERE in parked["accounts"][0]["parked"]["error"]
    assert (await _get(stack, poisoned, f"/v1/accounts/{bad}"))["parked"]["error"]
    assert (await _get(stack, healthy, "/v1/parked"))["accounts"] == []  # tenant's own only

    # Released while still broken: it says why and stays parked.
    again = await stack.api.post(f"/v1/accounts/{bad}/release", headers=poisoned.admin)
    assert again.status == 409
    problem = await again.json()
    assert problem["code"] == "still_failing"
    assert NOWHERE in problem["detail"]
    assert (await _get(stack, poisoned, f"/v1/accounts/{bad}"))["parked"]["job"] == "release"

    # Repaired and released: caught up at once, and no longer parked.
    await _set_timezone(sessions, bad, "UTC")
    released = await stack.api.post(f"/v1/accounts/{bad}/release", headers=poisoned.admin)
    assert released.status == 200, await released.text()
    assert (await released.json())["parked"] is None
    assert await _invoices(sessions, bad) == 2
    assert (await _get(stack, poisoned, "/v1/parked"))["accounts"] == []
    not_parked = await stack.api.post(f"/v1/accounts/{bad}/release", headers=poisoned.admin)
    assert not_parked.status == 409


async def test_a_failing_child_is_parked_alone_and_its_family_is_billed(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A parent and its children are caught up together, so one child's bad data failed
    the whole family: the worker finds the member that fails on its own and parks it
    alone; the parent and the other child are billed as usual."""
    tenant = await stack.new_tenant()
    await stack.post(
        "/v1/plans", tenant, {"code": "pro", "name": "Pro", "currency": "USD", "amount": "20.00"}
    )
    parent = await stack.post("/v1/accounts", tenant, {"name": "Group", "kind": "enterprise"})
    kids = []
    for name in ("Branch A", "Branch B"):
        kid = await stack.post(
            "/v1/accounts",
            tenant,
            {"name": name, "parent_id": parent["id"], "payment_delegated": True},
        )
        await stack.post(f"/v1/accounts/{kid['id']}/subscriptions", tenant, {"plan": "pro"})
        kids.append(kid["id"])
    healthy, broken = kids
    await _set_timezone(sessions, broken, NOWHERE)

    moved = await stack.api.post(
        "/v1/test/clock", json={"advance_days": 35}, headers=stack.operator
    )
    assert moved.status == 200, await moved.text()

    parked = await _get(stack, tenant, "/v1/parked")
    assert [a["id"] for a in parked["accounts"]] == [broken]
    assert NOWHERE in parked["accounts"][0]["parked"]["error"]
    assert await _invoices(sessions, healthy) == 2  # renewed like any other
    assert await _invoices(sessions, broken) == 1
    assert (await _get(stack, tenant, f"/v1/accounts/{parent['id']}"))["parked"] is None


async def test_a_parked_account_keeps_its_access_until_released(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Its billing waits for a person, and its customer does not pay for that: the record
    the gateways hold loses its time bound (it would have lapsed into suspension on day 30
    of an unpaid invoice), so the customer keeps the standing they had until the account is
    released and evaluated again."""
    tenant = await stack.new_tenant()
    dee = await stack.customer(tenant, "dee")  # owes 49.00 from today: grace, 30 days
    await stack.wait_allowed(tenant, "dee")
    await _set_timezone(sessions, dee, NOWHERE)
    for days in (1, 44):  # parked the next day, then past the day access would lapse
        moved = await stack.api.post(
            "/v1/test/clock", json={"advance_days": days}, headers=stack.operator
        )
        assert moved.status == 200, await moved.text()
    assert (await _get(stack, tenant, f"/v1/accounts/{dee}"))["parked"]["job"] == "scheduler"
    decision = await stack.authorize(tenant, "dee")
    assert (decision["allow"], decision["standing"]) == (True, "grace")

    await _set_timezone(sessions, dee, "UTC")
    released = await stack.api.post(f"/v1/accounts/{dee}/release", headers=tenant.admin)
    assert released.status == 200, await released.text()

    async def suspended() -> bool:
        return (await stack.authorize(tenant, "dee"))["reason"] == "payment_overdue"

    await stack.eventually(suspended)  # evaluated again: 45 days past due


async def test_an_invoice_run_parks_the_account_it_cannot_bill_and_finishes(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    tenant = await stack.new_tenant()
    accounts = [await stack.customer(tenant, f"user{n}") for n in range(3)]
    bad = accounts[1]
    await _set_timezone(sessions, bad, NOWHERE)
    later = ManualClock(SystemClock().now() + timedelta(days=35))

    # With a target day: the worker's own runner may drive this run too (it takes turns on
    # the run's row), and with its own clock it would bill nothing without one.
    run = await start_run(sessions, later.now(), tenant_id=tenant.id, target=later.now().date())
    finished = await resume_run(sessions, later, run.id, batch_size=2)

    assert (finished.status, finished.done, finished.parked) == ("finished", 3, 1)
    assert finished.invoices == 2
    assert [await _invoices(sessions, a) for a in accounts] == [2, 1, 2]
    async with sessions() as session:
        account = await session.get(Account, bad)
        assert account is not None
        assert account.parked_job == "invoice_run"
    # A parked account is out of later runs until released.
    rerun = await start_run(
        sessions, later.now() + timedelta(days=1), tenant_id=tenant.id, target=later.now().date()
    )
    assert rerun.total == 0


async def test_drivers_of_one_run_never_count_an_account_twice(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Three drivers of one run at once (the worker's runner, `tollgate invoice-run`, ...),
    with accounts that must be redone one by one: each account is counted once."""
    tenant = await stack.new_tenant()
    accounts = [await stack.customer(tenant, f"user{n}") for n in range(6)]
    for bad in accounts[1::3]:
        await _set_timezone(sessions, bad, NOWHERE)
    later = ManualClock(SystemClock().now() + timedelta(days=35))
    run = await start_run(sessions, later.now(), tenant_id=tenant.id, target=later.now().date())
    await asyncio.gather(*(resume_run(sessions, later, run.id, batch_size=2) for _ in range(3)))
    async with sessions() as session:
        finished = await session.get(InvoiceRun, run.id)
    assert finished is not None
    assert (finished.status, finished.done, finished.parked) == ("finished", 6, 2)
    assert finished.invoices == 4
    assert [await _invoices(sessions, a) for a in accounts] == [2, 1, 2, 2, 1, 2]


async def test_the_payment_queue_parks_an_event_it_cannot_apply_and_applies_the_rest(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    tenant = await stack.new_tenant()
    bad, good = await stack.customer(tenant, "dee"), await stack.customer(tenant, "eve")
    await _set_timezone(sessions, bad, NOWHERE)
    now = SystemClock().now()
    async with sessions() as session, session.begin():
        for n, account in enumerate((bad, good)):
            session.add(
                PaymentEvent(
                    tenant_id=tenant.id, account_id=account, key=f"manual-{n}", source="manual",
                    type=RECEIVED, amount_minor=4900, currency="USD", method="wire",
                    occurred_at=now, received_at=now,
                )
            )  # fmt: skip

    # The stack's own worker drains the queue too: whichever takes an event applies it (the
    # other skips the row it holds), so what is read is what both have done by then.
    await drain(sessions, ManualClock(now))
    await stack.eventually(lambda: _settled(sessions, good, bad))

    async with sessions() as session:
        events = {e.account_id: e for e in (await session.scalars(select(PaymentEvent))).all()}
    assert events[good].outcome == "applied"
    assert events[bad].applied_at is None
    assert events[bad].parked_at is not None
    assert NOWHERE in (events[bad].parked_error or "")
    parked = await _get(stack, tenant, "/v1/parked")
    assert [e["account_id"] for e in parked["payment_events"]] == [bad]

    # Repaired and released, the queue applies it: the payment is recorded.
    await _set_timezone(sessions, bad, "UTC")
    event_id = events[bad].id
    released = await stack.api.post(f"/v1/payment-events/{event_id}/release", headers=tenant.admin)
    assert released.status == 204
    await drain(sessions, ManualClock(now))
    await stack.eventually(lambda: _settled(sessions, bad))
    async with sessions() as session:
        event = await session.get(PaymentEvent, event_id)
        assert event is not None
        assert event.outcome == "applied"
    missing = await stack.api.post("/v1/payment-events/999999/release", headers=tenant.admin)
    assert missing.status == 404


async def _settled(sessions: async_sessionmaker[AsyncSession], *accounts: str) -> bool:
    """Whether every payment event of ``accounts`` was applied or parked."""
    async with sessions() as session:
        events = (
            await session.scalars(select(PaymentEvent).where(PaymentEvent.account_id.in_(accounts)))
        ).all()
    return all(e.applied_at is not None or e.parked_at is not None for e in events)
