"""What every part of the benchmark shares: the profile, the rows, pinned processes, wrk.

Servers run pinned to core 0 and wrk to core 1 (where there are two cores), with fixed
connections and duration, a warm-up, and each figure the median of several runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.migrate import upgrade
from shared import redis_connection
from tollgate.bench import flames
from tollgate.bench.wrk import Traffic, WrkResult, run
from tollgate.redis_server import wait_for_port
from tollgate.seed import SeedPlan, TenantKeys, seed

BASELINE = "aiohttp minimal handler"
WARM = "warm near-cache"
#: The row whose saturating rate the propagation's half load is paced from.
WARM_AUTHORIZE = f"Tollgate /v1/authorize, {WARM}"


@dataclass(frozen=True, slots=True)
class Reference:
    """A server left running to measure rows next to: its address and its traffic."""

    url: str
    traffic: Traffic


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
            seconds=2,
            warmup=1,
            runs=3,
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
    #: Requests/s over the minimal aiohttp handler's: the median of the per-pair ratios
    #: when measured next to it (``spread`` is their range), else of the medians.
    ratio: float = float("nan")
    spread: tuple[float, float] | None = None


@dataclass
class Results:
    machine: dict[str, Any]
    profile: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    #: By load (``at half load``, ``saturated``): payments made, and p50, p99, max in ms.
    propagation_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    billing: list[dict[str, Any]] = field(default_factory=list)
    workers: list[dict[str, Any]] = field(default_factory=list)
    #: Flame graphs (``--profile``): what each was taken of, and its file, relative to the
    #: results' directory.
    profiles: dict[str, str] = field(default_factory=dict)
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
    def __init__(
        self,
        profile: Profile,
        workdir: Path,
        postgres_url: str | None,
        *,
        flame_graphs: Path | None = None,
    ) -> None:
        self.profile = profile
        #: Where ``--profile`` writes its flame graphs (None: no profiling).
        self.flame_graphs = flame_graphs
        self.workdir = workdir
        self.postgres_url = postgres_url
        two_cores = (os.cpu_count() or 1) >= 2
        self.server_core = "0" if two_cores else None
        self.load_core = "1" if two_cores else None
        self.children: list[subprocess.Popen[bytes]] = []
        self.results = Results(machine=machine(), profile=asdict(profile))

    # --- processes ---------------------------------------------------------------------

    def pin(self, process: subprocess.Popen[bytes], core: str | None = None) -> None:
        """To ``core``, by default the servers' (where there are two)."""
        core = core or self.server_core
        if core is not None:
            for pid in [process.pid, *_children_of(process.pid)]:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(pid, {int(core)})

    def start(
        self,
        command: list[str],
        env: dict[str, str],
        port: int,
        name: str,
        *,
        core: str | None = None,
    ) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        self.children.append(process)
        wait_for_port(port, timeout=30)
        time.sleep(0.3)
        self.pin(process, core)
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

    def _run(self, url: str, traffic: Traffic, seconds: float) -> WrkResult:
        p = self.profile
        return run(
            url, traffic, self.workdir, seconds=seconds, connections=p.connections,
            core=self.load_core,
        )  # fmt: skip

    @contextlib.contextmanager
    def sampled(self, pid: int, name: str) -> Iterator[None]:
        """With ``--profile``, a flame graph of process ``pid`` while the block runs."""
        if self.flame_graphs is None:
            yield
            return
        output = flames.file_for(self.flame_graphs, name)
        with flames.sampling(pid, output, name):
            yield
        self.results.profiles[name] = f"{self.flame_graphs.name}/{output.name}"

    def measure(
        self,
        name: str,
        url: str,
        traffic: Traffic,
        *,
        against: Reference | None = None,
        server: subprocess.Popen[bytes] | None = None,
    ) -> Row:
        """A row: the median of the profile's runs after a warm-up.

        With ``against`` (the minimal handler, left running), each run is paired with a run
        of the reference just before it, and the row's ratio is the median of the pairs'
        ratios: on a shared machine, what the neighbours cost drifts over minutes, and a
        ratio of runs seconds apart cancels the drift that a ratio of medians would keep.

        With ``--profile``, the ``server`` is then sampled through one more run, which
        counts in no figure (a sampled process runs slower).
        """
        p = self.profile
        self._run(url, traffic, p.warmup)
        results: list[WrkResult] = []
        ratios: list[float] = []
        for _ in range(p.runs):
            if against is not None:
                reference = self._run(against.url, against.traffic, p.seconds)
            result = self._run(url, traffic, p.seconds)
            results.append(result)
            if against is not None:
                ratios.append(result.rps / reference.rps)
        row = Row(
            name=name,
            rps=statistics.median(r.rps for r in results),
            p50_ms=statistics.median(r.p50_ms for r in results),
            p99_ms=statistics.median(r.p99_ms for r in results),
            errors=sum(r.errors for r in results),
        )
        if ratios:
            row.ratio = statistics.median(ratios)
            row.spread = (min(ratios), max(ratios))
        self.results.rows.append(row)
        if server is not None and self.flame_graphs is not None:
            with self.sampled(server.pid, name):
                self._run(url, traffic, p.seconds)
        paired = f"  x{row.ratio:.2f} ({min(ratios):.2f}-{max(ratios):.2f})" if ratios else ""
        print(
            f"  {name:<48} {row.rps:>10,.0f} req/s  p50 {row.p50_ms:6.2f} ms  "
            f"p99 {row.p99_ms:6.2f} ms  errors {row.errors}{paired}",
            flush=True,
        )
        return row


def _children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        return [int(child) for child in path.read_text().split()]
    return []


def env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
    env.update({f"TOLLGATE_{k}": v for k, v in values.items()})
    return env


def python(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


async def seed_tenant(database_url: str, redis_url: str, users: int) -> TenantKeys:
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


async def reset_postgres(url: str) -> None:
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
