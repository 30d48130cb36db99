"""Invoice runs: progress through the API, resumption after a crash, nothing billed twice."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.db.models import Invoice, InvoiceItem, InvoiceRun, Tenant
from billing_worker.jobs.invoice_runs import resume_run, start_run
from billing_worker.jobs.scheduler import run_due
from billing_worker.payments.collection import collect_due
from billing_worker.payments.payment_queue import drain
from billing_worker.payments.providers import SandboxProvider
from billing_worker.settings import WorkerSettings
from billing_worker.worker import create_app as create_worker_app
from shared.clock import ManualClock, RedisTestClock
from tests.integration.conftest import OPERATOR_KEY, SECRETS_KEY, Stack
from tollgate.seed import SeedPlan, seed

MONTH = timedelta(days=32)


class Crash(Exception):
    pass


async def _seeded(database_url: str, redis_client: aioredis.Redis, users: int) -> datetime:
    """``users`` paid-up consumer accounts; returns the moment they were seeded."""
    now = datetime.now(UTC)
    engine = create_engine(database_url)
    try:
        plan = SeedPlan(
            users=users, enterprise_share=0, grace=0, degraded=0, suspended=0, cancelled=0
        )
        await seed(session_factory(engine), redis_client, plan, now, progress=False)
    finally:
        await engine.dispose()
    return now


async def _billing_counts(database_url: str) -> tuple[int, int]:
    """(invoices, the largest number of recurring charges for one subscription and period)."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            invoices = await session.scalar(select(func.count()).select_from(Invoice)) or 0
            per_period = (
                select(func.count().label("n"))
                .where(InvoiceItem.kind == "recurring")
                .group_by(InvoiceItem.subscription_id, InvoiceItem.start_date)
                .subquery()
            )
            most = await session.scalar(select(func.max(per_period.c.n))) or 0
    finally:
        await engine.dispose()
    return invoices, most


async def test_a_run_that_crashed_resumes_where_it_stopped(
    database_url: str, redis_client: aioredis.Redis
) -> None:
    seeded = await _seeded(database_url, redis_client, 120)
    before, _ = await _billing_counts(database_url)
    engine = create_engine(database_url)
    try:
        sessions = session_factory(engine)
        clock = ManualClock(seeded + MONTH)
        run = await start_run(sessions, clock.now())
        assert run.total == 120

        def crash_after_two_batches(progress: InvoiceRun) -> None:
            if progress.done >= 40:
                raise Crash

        try:
            await resume_run(
                sessions, clock, run.id, batch_size=20, progress=crash_after_two_batches
            )
        except Crash:
            pass
        async with sessions() as session:
            crashed = await session.get(InvoiceRun, run.id)
            assert crashed is not None
            assert (crashed.status, crashed.done, crashed.invoices) == ("running", 40, 40)

        finished = await resume_run(sessions, clock, run.id, batch_size=20)
        assert (finished.status, finished.done, finished.invoices) == ("finished", 120, 120)
        again = await start_run(sessions, clock.now())
        assert again.total == 0  # every account's next invoice is a month away now
    finally:
        await engine.dispose()
    after, most = await _billing_counts(database_url)
    assert after - before == 120
    assert most == 1


async def test_tollgate_invoice_run_killed_mid_run_resumes_without_billing_twice(
    database_url: str, redis_url: str, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    seeded = await _seeded(database_url, redis_client, 400)
    before, _ = await _billing_counts(database_url)
    await RedisTestClock(redis_client).set_offset(seeded + MONTH - datetime.now(UTC))
    env = {
        **os.environ,
        "TOLLGATE_DATABASE_URL": database_url,
        "TOLLGATE_REDIS_URL": redis_url,
        "TOLLGATE_TEST_MODE": "true",
    }
    command = [sys.executable, "-m", "tollgate.cli", "invoice-run", "--batch-size", "5"]
    # Watch the progress bar and kill the command part-way, as a crash would.
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    shown = b""
    done = 0
    while done < 50:
        chunk = await asyncio.wait_for(process.stderr.read(256), timeout=60)
        assert chunk, "the command ended before it could be killed"
        shown += chunk
        done = max([0, *map(int, re.findall(rb"(\d+)/400", shown))])
    process.send_signal(signal.SIGKILL)
    await process.wait()
    assert done < 400, "the run should be killed part-way"

    resumed = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming run_" in resumed.stdout
    assert resumed.stdout.rstrip().endswith("400 accounts, 400 invoices")
    assert "invoice" in resumed.stderr  # the progress bar
    after, most = await _billing_counts(database_url)
    assert after - before == 400
    assert most == 1


async def test_runs_started_through_the_api_report_progress_to_their_tenant_only(
    stack: Stack, database_url: str
) -> None:
    acme = await stack.new_tenant("Acme")
    other = await stack.new_tenant("Other")
    accounts = [await stack.customer(acme, user) for user in ("ann", "bob", "cat")]
    clock = await (await stack.api.get("/v1/test/clock", headers=acme.admin)).json()
    ahead = (datetime.fromisoformat(clock["now"]) + timedelta(days=40)).date()

    # Billing ahead of time is what the scheduler never does on its own: only the run bills.
    response = await stack.api.post(
        "/v1/invoice-runs", json={"target_date": ahead.isoformat()}, headers=acme.admin
    )
    assert response.status == 202, await response.text()
    run = await response.json()
    assert run["total"] == 3

    async def finished() -> bool:
        response = await stack.api.get(f"/v1/invoice-runs/{run['id']}", headers=acme.admin)
        body = await response.json()
        return bool(body["status"] == "finished" and body["done"] == 3)

    await stack.eventually(finished)
    listed = await (await stack.api.get("/v1/invoice-runs", headers=acme.admin)).json()
    assert [r["id"] for r in listed["data"]] == [run["id"]]
    for account in accounts:
        invoices = await stack.api.get(f"/v1/accounts/{account}/invoices", headers=acme.admin)
        assert len((await invoices.json())["data"]) == 2  # the first month and the second

    hidden = await stack.api.get(f"/v1/invoice-runs/{run['id']}", headers=other.admin)
    assert hidden.status == 404
    assert (await (await stack.api.get("/v1/invoice-runs", headers=other.admin)).json()) == {
        "data": []
    }


async def test_simultaneous_starts_of_one_days_run_make_one_run(database_url: str) -> None:
    """Twenty requests for the same tenant and day at once: one run, which all of them get.
    No worker runs beside them here: a run that has finished no longer blocks a new one, and
    a worker's runner could finish it between two of the starts."""
    tenant = Tenant(id="tnt_runs", name="Runs", created_at=datetime.now(UTC))
    target = (datetime.now(UTC) + MONTH).date()
    engine = create_engine(database_url)
    try:
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            session.add(tenant)
        now = datetime.now(UTC)
        runs = await asyncio.gather(
            *(start_run(sessions, now, tenant_id=tenant.id, target=target) for _ in range(20))
        )
        assert len({run.id for run in runs}) == 1
        async with sessions() as session:
            stored = await session.scalar(
                select(func.count())
                .select_from(InvoiceRun)
                .where(InvoiceRun.tenant_id == tenant.id)
            )
        assert stored == 1
    finally:
        await engine.dispose()


async def test_a_run_after_a_jump_lets_each_account_live_its_month_in_order(
    database_url: str, redis_url: str, redis_client: aioredis.Redis
) -> None:
    """The test clock jumps a month before any job has run, and an invoice run for the new
    day is the first job to reach the account: the run catches the account up moment by
    moment, as the scheduler would, instead of billing it as of the jump's end. The first
    invoice is charged on its own day, the renewal on its own, and the account is never
    shown suspended for a month it paid on time."""
    settings = WorkerSettings.from_env(
        {
            "TOLLGATE_DATABASE_URL": database_url,
            "TOLLGATE_REDIS_URL": redis_url,
            "TOLLGATE_OPERATOR_KEY": OPERATOR_KEY,
            "TOLLGATE_TEST_MODE": "true",
            "TOLLGATE_SECRETS_KEY": SECRETS_KEY,
        }
    )
    # The management API alone (`tollgate api`): no job runs unless this test runs it.
    async with TestClient(TestServer(create_worker_app(settings, jobs=False))) as api:
        operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
        tenant = await (
            await api.post("/v1/tenants", json={"name": "Jump"}, headers=operator)
        ).json()
        admin = {"Authorization": f"Bearer {tenant['admin_key']}"}

        async def post(path: str, body: dict[str, str]) -> dict[str, str]:
            response = await api.post(path, json=body, headers=admin)
            assert response.status in (201, 202), await response.text()
            return dict(await response.json())

        await post(
            "/v1/plans", {"code": "pro", "name": "Pro", "currency": "USD", "amount": "20.00"}
        )
        account = (await post("/v1/accounts", {"name": "Pays on time"}))["id"]
        await post(f"/v1/accounts/{account}/payment-methods", {"token": "tok_sandbox_success"})
        await post(f"/v1/accounts/{account}/subscriptions", {"plan": "pro"})
        start = datetime.fromisoformat(
            (await (await api.get("/v1/test/clock", headers=admin)).json())["now"]
        )
        moved = await api.post("/v1/test/clock", json={"advance_days": 31, "settle": False},
                               headers=operator)  # fmt: skip
        assert moved.status == 200

        clock = RedisTestClock(redis_client)
        await clock.refresh()
        engine = create_engine(database_url)
        try:
            sessions = session_factory(engine)
            run = await start_run(sessions, clock.now(), tenant_id=tenant["id"],
                                  target=clock.now().date())  # fmt: skip
            await resume_run(sessions, clock, run.id)
            # then the worker's other jobs, until nothing is left to do
            provider = SandboxProvider()
            while await run_due(sessions, clock) + await collect_due(sessions, [provider], clock):
                await drain(sessions, clock)
            await drain(sessions, clock)
        finally:
            await engine.dispose()

        async def listed(path: str) -> list[dict[str, str]]:
            body = await (await api.get(f"/v1/accounts/{account}/{path}", headers=admin)).json()
            return list(body["data"])

        invoices = sorted(await listed("invoices"), key=lambda i: i["invoice_date"])
        attempts = sorted(await listed("payment-attempts"), key=lambda a: a["created_at"])
        history = await listed("standing-history")
    renewal = invoices[1]["invoice_date"]
    assert [i["total"] for i in invoices] == ["20.00", "20.00"]
    assert [i["status"] for i in invoices] == ["paid", "paid"]
    # each charge made on its own invoice's day, for that invoice alone
    assert [(a["amount"], a["status"]) for a in attempts] == [("20.00", "succeeded")] * 2
    assert attempts[0]["created_at"][:10] == start.date().isoformat()
    assert attempts[1]["created_at"][:10] == renewal
    assert all(change["standing"] == "active" for change in history), history
