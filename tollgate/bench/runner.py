"""The benchmark: every row measured in the same run, by the same load generator.

Rows (tollgate.bench.throughput): baselines (nginx returning 200, a minimal aiohttp
handler and aiohttp's low-level server, the same with one Redis GET, a do-it-yourself
handler querying SQL per login), then Tollgate (authorize and the proxy check with a warm
near-cache and without one, nginx's auth_request in front, logins with the seat check,
one and two gateway processes); then propagation (payment committed -> first changed
decision, under load), invoice-run throughput and, on PostgreSQL, several workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.db.models import Tenant
from billing_worker.jobs.invoice_runs import resume_run, start_run
from billing_worker.jobs.rebuild import rebuild
from billing_worker.migrate import upgrade
from billing_worker.services import reports as console_reads
from shared import redis_connection
from shared.clock import ManualClock, SystemClock
from shared.redis_connection import RedisClient
from tollgate.bench import workers
from tollgate.bench.harness import (
    BASELINE,
    WARM_AUTHORIZE,
    Bench,
    Profile,
    Results,
    env,
    python,
    reset_postgres,
    seed_tenant,
)
from tollgate.bench.report import chart, markdown
from tollgate.bench.throughput import throughput
from tollgate.bench.wrk import Traffic
from tollgate.redis_server import free_port, start_redis
from tollgate.seed import SeedPlan, TenantKeys, seed

__all__ = ["Profile", "run_bench", "workspace"]


def _propagation(bench: Bench, redis_url: str, database_url: str, keys: TenantKeys) -> None:
    """Payments made while wrk keeps the gateway busy, at half of its saturating rate (the
    load the p99 target is set at) and saturated, each on accounts of its own.

    The worker runs on the load generator's core, not the gateway's: it is a service of
    its own wherever Tollgate is deployed, and beside a busy gateway on one core the
    measure was the worker's CPU time taking turns with the gateway's, not propagation.
    """
    print("propagation (payment committed -> changed decision, under load)", flush=True)
    api_port, gw_port = free_port(), free_port()
    worker = bench.start(
        python("billing_worker"),
        env(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            OPERATOR_KEY="tgop_bench",
            API_PORT=str(api_port),
        ),
        api_port,
        "worker",
        core=bench.load_core,
    )
    gateway = bench.start(
        python("gateway"),
        env(REDIS_URL=redis_url, GATEWAY_PORT=str(gw_port)),
        gw_port,
        "gateway-propagation",
    )
    gateway_url = f"http://127.0.0.1:{gw_port}"
    connections, changes = 20, bench.profile.propagation_changes
    saturated = Traffic(
        method="POST",
        path="/v1/authorize",
        bodies=tuple(json.dumps({"user": u}) for u in keys.users["active"][:1000]),
        headers={"Authorization": f"Bearer {keys.gateway_key}"},
    )
    rate = next((r.rps for r in bench.results.rows if r.name == WARM_AUTHORIZE), None)
    loads = [("saturated", saturated)]
    if rate is not None:
        loads.insert(0, ("at half load", saturated.paced(connections, rate / 2)))
    suspended = iter(keys.accounts["suspended"])
    for label, load in loads:
        lua = bench.workdir / "load.lua"
        lua.write_text(load.lua())
        command = ["wrk", "-t1", f"-c{connections}", "-d300s", "-s", str(lua), gateway_url]
        if bench.load_core is not None:
            command = ["taskset", "-c", bench.load_core, *command]
        background = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            accounts = [next(suspended) for _ in range(changes)]
            times = asyncio.run(
                _pay_and_watch(f"http://127.0.0.1:{api_port}", gateway_url, keys, accounts)
            )
        finally:
            background.terminate()
            background.wait()
        times.sort()
        stats = {
            "changes": len(times),
            "p50": statistics.median(times),
            "p99": times[min(len(times) - 1, int(len(times) * 0.99))],
            "max": times[-1],
        }
        bench.results.propagation_ms[label] = stats
        print(
            f"  {label}: {len(times)} payments: p50 {stats['p50']:.1f} ms, "
            f"p99 {stats['p99']:.1f} ms, max {stats['max']:.1f} ms",
            flush=True,
        )
    bench.stop(gateway)
    bench.stop(worker)


async def _pay_and_watch(
    api: str, gateway: str, keys: TenantKeys, accounts: list[tuple[str, str]]
) -> list[float]:
    admin = {"Authorization": f"Bearer {keys.admin_key}"}
    gate = {"Authorization": f"Bearer {keys.gateway_key}"}
    times = []
    async with aiohttp.ClientSession() as http:
        for account_id, user in accounts:
            async with http.get(f"{api}/v1/accounts/{account_id}", headers=admin) as response:
                owed = (await response.json())["balance_due"]
            async with http.post(
                f"{api}/v1/accounts/{account_id}/payments",
                headers=admin,
                json={"amount": owed, "currency": "USD"},
            ) as response:
                assert response.status == 201, await response.text()
            committed = time.perf_counter()
            while True:
                async with http.post(
                    f"{gateway}/v1/authorize", json={"user": user}, headers=gate
                ) as response:
                    if (await response.json())["allow"]:
                        break
                if time.perf_counter() - committed > 10:
                    raise RuntimeError(f"payment of {account_id} never reached the gateway")
            times.append((time.perf_counter() - committed) * 1000)
            await asyncio.sleep(random.uniform(0.05, 0.15))
    return times


async def _invoice_run(
    bench: Bench, backend: str, database_url: str, redis_url: str, accounts: int
) -> tuple[float, float, float]:
    """Seconds for a lost Redis view of ``accounts`` paid-up consumer accounts to be rebuilt
    from SQL, for an invoice run to bill them a month, and for the console's overview to
    read what it shows of them."""
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    client = redis_connection.connect(redis_url)
    try:
        sessions = session_factory(engine)
        now = datetime.now(UTC)
        plan = SeedPlan(
            users=accounts, enterprise_share=0, grace=0, degraded=0, suspended=0, cancelled=0
        )
        await seed(sessions, client, plan, now, progress=False)
        await redis_connection.flush_everything(client)  # the view is lost
        started = time.perf_counter()
        counts = await rebuild(sessions, client, SystemClock())
        rebuilt = time.perf_counter() - started
        if counts["accounts"] != accounts or counts["recomputed"]:
            raise RuntimeError(f"the rebuild republished {counts}")
        # Billed ahead, a month on: the run's own work, with no day of the month to catch
        # up first (a running worker's scheduler does those as they come).
        clock, ahead = ManualClock(now), (now + timedelta(days=32)).date()
        with bench.sampled(os.getpid(), f"invoice run, {backend}, {accounts:,} accounts"):
            started = time.perf_counter()
            run = await start_run(sessions, clock.now(), target=ahead)
            run = await resume_run(sessions, clock, run.id, batch_size=500)
            elapsed = time.perf_counter() - started
        if run.invoices != accounts:
            raise RuntimeError(f"the run issued {run.invoices} invoices for {accounts} accounts")
        return rebuilt, elapsed, await _overview(sessions, client, clock.now())
    finally:
        await client.aclose()
        await engine.dispose()


async def _overview(
    sessions: async_sessionmaker[AsyncSession], client: RedisClient, now: datetime
) -> float:
    """Seconds for the console's overview reads (the best of three), on one tenant."""
    async with sessions() as session:
        tenant_id = await session.scalar(select(Tenant.id).limit(1))
    assert tenant_id is not None
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        async with sessions() as session:
            await console_reads.overview(session, tenant_id, now)
            await console_reads.revenue(session, tenant_id)
            await console_reads.pipeline(session, tenant_id, now)
            await console_reads.decisions(client, tenant_id, now)
        best = min(best, time.perf_counter() - started)
    return best


def _billing(bench: Bench, redis_url: str) -> None:
    print("invoice runs (a month for N paid-up accounts)", flush=True)
    scratch = redis_url.rsplit("/", 1)[0] + "/2"
    backends = [("SQLite", None)] + (
        [("PostgreSQL", bench.postgres_url)] if bench.postgres_url else []
    )
    for backend, url in backends:
        for size in bench.profile.billing_sizes:
            if url is None:
                database = bench.workdir / f"billing-{size}.db"
                database.unlink(missing_ok=True)
                target = f"sqlite:///{database}"
            else:
                asyncio.run(reset_postgres(url))
                target = url
            rebuilt, seconds, overview = asyncio.run(
                _invoice_run(bench, backend, target, scratch, size)
            )
            entry = {
                "backend": backend,
                "accounts": size,
                "seconds": round(seconds, 2),
                "accounts_per_second": round(size / seconds, 1),
                "ms_per_account": round(seconds * 1000 / size, 3),
                "rebuild_accounts_per_second": round(size / rebuilt, 1),
                "console_overview_ms": round(overview * 1000, 1),
            }
            bench.results.billing.append(entry)
            print(
                f"  {backend:<10} {size:>7,} accounts: {entry['accounts_per_second']:>8,.0f}/s "
                f"({entry['ms_per_account']} ms each); a lost view rebuilt at "
                f"{entry['rebuild_accounts_per_second']:,.0f} accounts/s; the console's "
                f"overview read in {entry['console_overview_ms']} ms",
                flush=True,
            )


def run_bench(
    profile: Profile,
    workdir: Path,
    out: Path,
    postgres_url: str | None,
    only: str | None = None,
    *,
    flame_graphs: bool = False,
) -> Results:
    bench = Bench(
        profile, workdir, postgres_url, flame_graphs=out / "profiles" if flame_graphs else None
    )
    try:
        port = free_port()
        redis_process = start_redis(port, workdir / "redis")
        bench.children.append(redis_process)
        bench.pin(redis_process)
        redis_url = f"redis://127.0.0.1:{port}/0"
        database_url = f"sqlite:///{workdir / 'bench.db'}"
        if only in (None, "gateway"):
            print(f"seeding {profile.users:,} users ...", flush=True)
            keys = asyncio.run(seed_tenant(database_url, redis_url, profile.users))
            throughput(bench, redis_url, database_url, keys)
            _propagation(bench, redis_url, database_url, keys)
        if only in (None, "billing"):
            _billing(bench, redis_url)
        if only in (None, "workers"):
            _workers(bench, redis_url)
    finally:
        bench.stop_all()
    results = bench.results
    baseline = next((r.rps for r in results.rows if r.name == BASELINE), float("nan"))
    for row in results.rows:
        if row.spread is None:  # not measured in pairs: the ratio of the medians
            row.ratio = row.rps / baseline
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(asdict(results), indent=2))
    (out / "bench.md").write_text(markdown(results))
    if results.rows:
        chart(results, out / "bench.png")
    return results


def _workers(bench: Bench, redis_url: str) -> None:
    if bench.postgres_url is None:
        bench.results.notes.append("Workers: not measured (no PostgreSQL database given).")
        return
    accounts = bench.profile.worker_accounts
    print(f"workers on PostgreSQL (a month of renewals for {accounts:,} accounts)", flush=True)
    scratch = redis_url.rsplit("/", 1)[0] + "/3"
    for count in bench.profile.worker_counts:
        asyncio.run(reset_postgres(bench.postgres_url))
        seconds = asyncio.run(
            workers.timed_month(bench.postgres_url, scratch, bench.workdir, accounts, count)
        )
        entry = {"workers": count, "accounts": accounts, "seconds": round(seconds, 1),
                 "accounts_per_second": round(accounts / seconds, 1)}  # fmt: skip
        bench.results.workers.append(entry)
        print(f"  {count} worker(s): {entry['accounts_per_second']:,.0f} accounts/s", flush=True)


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tollgate-bench-") as tmp:
        yield Path(tmp)
