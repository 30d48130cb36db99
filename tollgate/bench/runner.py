"""The benchmark: every row measured in the same run, by the same load generator.

Servers run pinned to core 0 and wrk to core 1 (where there are two cores), with fixed
connections and duration, a warm-up, and each figure the median of several runs. Rows:
baselines (nginx returning 200, a minimal aiohttp handler, the same with one Redis GET,
a do-it-yourself handler querying SQL per login), then Tollgate (authorize and the proxy
check with a warm near-cache and without one, logins with the seat check, one and two
gateway processes); then propagation (payment committed -> first changed decision, under
load) and invoice-run throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.api.console import reads as console_reads
from billing_worker.db.engine import create_engine, session_factory
from billing_worker.db.models import Tenant
from billing_worker.jobs.invoice_runs import resume_run, start_run
from billing_worker.jobs.rebuild import rebuild
from billing_worker.migrate import upgrade
from shared import redis_connection
from shared.clock import ManualClock, SystemClock
from shared.redis_connection import RedisClient
from tollgate.bench import workers
from tollgate.bench.wrk import Traffic, WrkResult, run
from tollgate.redis_server import free_port, start_redis, wait_for_port
from tollgate.seed import SeedPlan, TenantKeys, seed

BASELINE = "aiohttp minimal handler"


@dataclass(frozen=True, kw_only=True, slots=True)
class Profile:
    users: int
    seconds: float
    warmup: float
    runs: int
    connections: int
    propagation_changes: int
    billing_sizes: tuple[int, ...]
    #: Accounts renewed by a fleet of workers, and the fleet sizes (PostgreSQL only).
    worker_accounts: int = 10_000
    worker_counts: tuple[int, ...] = (1, 2, 4)

    @classmethod
    def quick(cls) -> Profile:
        return cls(
            users=20_000,
            seconds=3,
            warmup=1,
            runs=1,
            connections=50,
            propagation_changes=15,
            billing_sizes=(2_000,),
            worker_accounts=1_000,
        )

    @classmethod
    def full(cls) -> Profile:
        return cls(
            users=100_000,
            seconds=10,
            warmup=3,
            runs=3,
            connections=50,
            propagation_changes=60,
            billing_sizes=(10_000, 100_000),
        )


@dataclass
class Row:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    ratio: float = float("nan")


@dataclass
class Results:
    machine: dict[str, Any]
    profile: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    propagation_ms: dict[str, float] = field(default_factory=dict)
    billing: list[dict[str, Any]] = field(default_factory=list)
    workers: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


class Bench:
    def __init__(self, profile: Profile, workdir: Path, postgres_url: str | None) -> None:
        self.profile = profile
        self.workdir = workdir
        self.postgres_url = postgres_url
        two_cores = (os.cpu_count() or 1) >= 2
        self.server_core = "0" if two_cores else None
        self.load_core = "1" if two_cores else None
        self.children: list[subprocess.Popen[bytes]] = []
        self.results = Results(machine=machine(), profile=asdict(profile))

    # --- processes ---------------------------------------------------------------------

    def pin(self, process: subprocess.Popen[bytes]) -> None:
        if self.server_core is not None:
            for pid in [process.pid, *_children_of(process.pid)]:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(pid, {int(self.server_core)})

    def start(
        self, command: list[str], env: dict[str, str], port: int, name: str
    ) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        self.children.append(process)
        wait_for_port(port, timeout=30)
        time.sleep(0.3)
        self.pin(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self) -> None:
        for process in reversed(self.children):
            self.stop(process)

    # --- measuring ---------------------------------------------------------------------

    def measure(self, name: str, url: str, traffic: Traffic) -> Row:
        p = self.profile
        run(
            url,
            traffic,
            self.workdir,
            seconds=p.warmup,
            connections=p.connections,
            core=self.load_core,
        )
        results: list[WrkResult] = [
            run(
                url,
                traffic,
                self.workdir,
                seconds=p.seconds,
                connections=p.connections,
                core=self.load_core,
            )
            for _ in range(p.runs)
        ]
        row = Row(
            name=name,
            rps=statistics.median(r.rps for r in results),
            p50_ms=statistics.median(r.p50_ms for r in results),
            p99_ms=statistics.median(r.p99_ms for r in results),
            errors=sum(r.errors for r in results),
        )
        self.results.rows.append(row)
        print(
            f"  {name:<48} {row.rps:>10,.0f} req/s  p50 {row.p50_ms:6.2f} ms  "
            f"p99 {row.p99_ms:6.2f} ms  errors {row.errors}",
            flush=True,
        )
        return row


def _children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        return [int(child) for child in path.read_text().split()]
    return []


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
    env.update({f"TOLLGATE_{k}": v for k, v in values.items()})
    return env


async def _seed(database_url: str, redis_url: str, users: int) -> TenantKeys:
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    client = redis_connection.connect(redis_url)
    try:
        plan = SeedPlan(users=users)
        [keys] = await seed(session_factory(engine), client, plan, datetime.now(UTC))
        return keys
    finally:
        await client.aclose()
        await engine.dispose()


async def _sessions(gateway: str, key: str, users: list[str]) -> list[str]:
    tokens = []
    async with aiohttp.ClientSession() as http:
        for user in users:
            headers = {"Authorization": f"Bearer {key}"}
            async with http.post(
                f"{gateway}/v1/sessions", json={"user": user}, headers=headers
            ) as response:
                if response.status == 201:
                    tokens.append((await response.json())["token"])
    return tokens


async def _reset_postgres(url: str) -> None:
    import asyncpg

    target = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", target)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{target}"')
    finally:
        await admin.close()
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


def _nginx_baseline(bench: Bench) -> str:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    root = bench.workdir / "nginx"
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "nginx.conf").write_text(
        f"""daemon off; worker_processes 1; pid {root}/nginx.pid; error_log {root}/error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {root}/body; proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi; uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "ok"; }} }} }}
"""
    )
    bench.start(
        [nginx, "-c", str(root / "nginx.conf"), "-p", str(root)], os.environ.copy(), port, "nginx"
    )
    return f"http://127.0.0.1:{port}"


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def _throughput(bench: Bench, redis_url: str, database_url: str, keys: TenantKeys) -> None:
    sample = keys.users["active"][:1000]
    consumers = keys.users["consumer:active"][:1000]
    bodies = tuple(json.dumps({"user": user}) for user in sample)
    authorize = Traffic(
        method="POST",
        path="/v1/authorize",
        bodies=bodies,
        headers={"Authorization": f"Bearer {keys.gateway_key}", "Content-Type": "application/json"},
    )

    print("baselines", flush=True)
    url = _nginx_baseline(bench)
    bench.measure(
        "nginx returning 200 (HTTP floor)", url, Traffic(method="GET", path="/", headers={})
    )
    sqlite_args = ["--url", database_url, "--tenant", keys.id]
    for kind, name, extra in (
        ("hello", BASELINE, []),
        ("redis", "aiohttp + one Redis GET", ["--url", redis_url]),
        ("sql", "DIY: one SQL query per login (SQLite)", sqlite_args),
    ):
        port = free_port()
        command = _python("tollgate.bench.baselines", kind, "--port", str(port), *extra)
        process = bench.start(command, os.environ.copy(), port, f"baseline-{kind}")
        if kind == "redis":
            asyncio.run(_mark_users(redis_url, sample))
        bench.measure(name, f"http://127.0.0.1:{port}", authorize)
        bench.stop(process)
    if bench.postgres_url:
        _postgres_baseline(bench, redis_url, authorize)
    else:
        bench.results.notes.append("PostgreSQL rows skipped: no --postgres-url given")

    print("tollgate", flush=True)
    tokens: list[str] = []
    for label, ttl, processes in (
        ("warm near-cache", "5", "1"),
        ("near-cache off: Redis path", "0", "1"),
    ):
        port = free_port()
        env = _env(
            REDIS_URL=redis_url,
            GATEWAY_PORT=str(port),
            NEAR_CACHE_TTL=ttl,
            GATEWAY_PROCESSES=processes,
        )
        gateway = bench.start(_python("gateway"), env, port, f"gateway-{ttl}")
        url = f"http://127.0.0.1:{port}"
        if not tokens:
            tokens = asyncio.run(_sessions(url, keys.gateway_key, consumers[:500]))
        proxy = Traffic(
            method="GET",
            path="/v1/auth",
            headers={"X-Original-Method": "GET"},
            varied_header="Cookie",
            header_values=tuple(f"tollgate_session={t}" for t in tokens),
        )
        saturated = bench.measure(f"Tollgate /v1/authorize, {label}", url, authorize)
        if ttl == "5":
            # wrk cannot fix a rate, but pausing each of c connections c / (R/2) seconds
            # between requests offers about half of the saturating rate R.
            half = dataclasses.replace(
                authorize, delay_ms=1000 * bench.profile.connections / (saturated.rps / 2)
            )
            bench.measure(f"Tollgate /v1/authorize, {label}, paced to half load", url, half)
        bench.measure(f"Tollgate /v1/auth, {label}", url, proxy)
        bench.stop(gateway)

    # After the proxy rows: logins evict the oldest sessions (3 seats), the ones they used.
    port = free_port()
    gateway = bench.start(
        _python("gateway"), _env(REDIS_URL=redis_url, GATEWAY_PORT=str(port)), port, "logins"
    )
    logins = Traffic(
        method="POST",
        path="/v1/sessions",
        headers=authorize.headers,
        bodies=tuple(json.dumps({"user": u}) for u in consumers),
    )
    bench.measure("Tollgate /v1/sessions login with seat check", f"http://127.0.0.1:{port}", logins)
    bench.stop(gateway)

    # Several processes cannot be pinned to the one server core; these two rows run unpinned.
    saved, bench.server_core = bench.server_core, None
    for processes in ("1", "2"):
        port = free_port()
        env = _env(REDIS_URL=redis_url, GATEWAY_PORT=str(port), GATEWAY_PROCESSES=processes)
        gateway = bench.start(_python("gateway"), env, port, f"gateway-x{processes}")
        bench.measure(
            f"Tollgate /v1/authorize, {processes} process(es), unpinned",
            f"http://127.0.0.1:{port}",
            authorize,
        )
        bench.stop(gateway)
    bench.server_core = saved


async def _mark_users(redis_url: str, users: list[str]) -> None:
    client = redis_connection.connect(redis_url)
    try:
        await client.mset({f"bench:{user}": "1" for user in users})
    finally:
        await client.aclose()


def _postgres_baseline(bench: Bench, redis_url: str, authorize: Traffic) -> None:
    assert bench.postgres_url is not None
    asyncio.run(_reset_postgres(bench.postgres_url))
    scratch = redis_url.rsplit("/", 1)[0] + "/1"
    keys = asyncio.run(_seed(bench.postgres_url, scratch, bench.profile.users))
    bodies = tuple(json.dumps({"user": user}) for user in keys.users["active"][:1000])
    port = free_port()
    process = bench.start(
        _python(
            "tollgate.bench.baselines",
            "sql",
            "--port",
            str(port),
            "--url",
            bench.postgres_url,
            "--tenant",
            keys.id,
        ),
        os.environ.copy(),
        port,
        "baseline-sql-pg",
    )
    traffic = Traffic(method="POST", path="/v1/authorize", headers=authorize.headers, bodies=bodies)
    bench.measure("DIY: one SQL query per login (PostgreSQL)", f"http://127.0.0.1:{port}", traffic)
    bench.stop(process)


def _propagation(bench: Bench, redis_url: str, database_url: str, keys: TenantKeys) -> None:
    print("propagation (payment committed -> changed decision, under load)", flush=True)
    api_port, gw_port = free_port(), free_port()
    operator = "tgop_bench"
    worker = bench.start(
        _python("billing_worker"),
        _env(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            OPERATOR_KEY=operator,
            API_PORT=str(api_port),
        ),
        api_port,
        "worker",
    )
    gateway = bench.start(
        _python("gateway"),
        _env(REDIS_URL=redis_url, GATEWAY_PORT=str(gw_port)),
        gw_port,
        "gateway-propagation",
    )
    gateway_url = f"http://127.0.0.1:{gw_port}"
    bodies = tuple(json.dumps({"user": u}) for u in keys.users["active"][:1000])
    load = Traffic(
        method="POST",
        path="/v1/authorize",
        bodies=bodies,
        headers={"Authorization": f"Bearer {keys.gateway_key}"},
    )
    lua = bench.workdir / "load.lua"
    lua.write_text(load.lua())
    command = ["wrk", "-t1", "-c20", "-d300s", "-s", str(lua), gateway_url]
    if bench.load_core is not None:
        command = ["taskset", "-c", bench.load_core, *command]
    background = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        suspended = keys.accounts["suspended"][: bench.profile.propagation_changes]
        times = asyncio.run(
            _pay_and_watch(f"http://127.0.0.1:{api_port}", gateway_url, keys, suspended)
        )
    finally:
        background.terminate()
        background.wait()
    times.sort()
    bench.results.propagation_ms = {
        "changes": len(times),
        "p50": statistics.median(times),
        "p99": times[min(len(times) - 1, int(len(times) * 0.99))],
        "max": times[-1],
    }
    stats = bench.results.propagation_ms
    print(
        f"  {len(times)} payments: p50 {stats['p50']:.1f} ms, p99 {stats['p99']:.1f} ms, "
        f"max {stats['max']:.1f} ms",
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
    database_url: str, redis_url: str, accounts: int
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
                asyncio.run(_reset_postgres(url))
                target = url
            rebuilt, seconds, overview = asyncio.run(_invoice_run(target, scratch, size))
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
) -> Results:
    bench = Bench(profile, workdir, postgres_url)
    try:
        port = free_port()
        redis_process = start_redis(port, workdir / "redis")
        bench.children.append(redis_process)
        bench.pin(redis_process)
        redis_url = f"redis://127.0.0.1:{port}/0"
        database_url = f"sqlite:///{workdir / 'bench.db'}"
        if only in (None, "gateway"):
            print(f"seeding {profile.users:,} users ...", flush=True)
            keys = asyncio.run(_seed(database_url, redis_url, profile.users))
            _throughput(bench, redis_url, database_url, keys)
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
        asyncio.run(_reset_postgres(bench.postgres_url))
        seconds = asyncio.run(
            workers.timed_month(bench.postgres_url, scratch, bench.workdir, accounts, count)
        )
        entry = {"workers": count, "accounts": accounts, "seconds": round(seconds, 1),
                 "accounts_per_second": round(accounts / seconds, 1)}  # fmt: skip
        bench.results.workers.append(entry)
        print(f"  {count} worker(s): {entry['accounts_per_second']:,.0f} accounts/s", flush=True)


def markdown(results: Results) -> str:
    m = results.machine
    lines = [
        f"Measured {m['date']} on {m['cores']} cores ({m['cpu']}), Python {m['python']}; "
        f"{results.profile['runs']} run(s) of {results.profile['seconds']} s, "
        f"{results.profile['connections']} connections, median.",
    ]
    if results.rows:
        lines += [
            "",
            "| row | requests/s | p50 ms | p99 ms | x minimal aiohttp | errors |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r.name} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.ratio:.2f} "
            f"| {r.errors} |"
            for r in results.rows
        ]
    if results.propagation_ms:
        p = results.propagation_ms
        lines += [
            "",
            f"Propagation under load ({p['changes']:.0f} payments, SQL commit → changed "
            f"gateway decision): p50 {p['p50']:.1f} ms, p99 {p['p99']:.1f} ms, "
            f"max {p['max']:.1f} ms.",
        ]
    if results.billing:
        lines += [
            "",
            "| invoice run | accounts | accounts/s | ms per account | lost view rebuilt, "
            "accounts/s | console overview, ms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {b['backend']} | {b['accounts']:,} | {b['accounts_per_second']:,.0f} "
            f"| {b['ms_per_account']} | {b.get('rebuild_accounts_per_second', 0):,.0f} "
            f"| {b.get('console_overview_ms', '—')} |"
            for b in results.billing
        ]
    if results.workers:
        one = results.workers[0]["accounts_per_second"]
        lines += [
            "",
            "| workers (PostgreSQL) | accounts | seconds | accounts/s | x one worker |",
            "|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {w['workers']} | {w['accounts']:,} | {w['seconds']} "
            f"| {w['accounts_per_second']:,.0f} | {w['accounts_per_second'] / one:.2f} |"
            for w in results.workers
        ]
    lines += [f"\n{note}" for note in results.notes]
    return "\n".join(lines) + "\n"


def chart(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results.rows
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(rows) + 1.5))
    colours = ["#1f6feb" if r.name.startswith("Tollgate") else "#8b949e" for r in rows]
    ax.barh([r.name for r in rows], [r.rps for r in rows], color=colours)
    for index, row in enumerate(rows):
        ax.text(
            row.rps,
            index,
            f"  {row.rps:,.0f}/s  x{row.ratio:.2f}  p99 {row.p99_ms:.1f} ms",
            va="center",
            fontsize=8,
        )
    ax.invert_yaxis()
    ax.set_xlabel("requests per second (wrk, median)")
    ax.set_xlim(0, max(r.rps for r in rows) * 1.45)
    m = results.machine
    ax.set_title(f"Tollgate vs baselines — {m['cores']} cores, {m['cpu']}, {m['date']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tollgate-bench-") as tmp:
        yield Path(tmp)
