"""Runs scenario files, each on a fresh database, and reports which passed."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

import aiohttp

from billing_worker.migrate import upgrade
from shared import redis_connection
from tollgate.redis_server import free_port, start_redis
from tollgate.simulate.runner import Simulation
from tollgate.simulate.scenario import Scenario, ScenarioError, load_scenario
from tollgate.simulate.stack import running_stack


async def simulate(
    scenario_path: Path,
    database_url: str,
    redis_url: str,
    out: TextIO,
    points: list[dict[str, str]] | None = None,
    read: Callable[[Path], Scenario] = load_scenario,
) -> bool:
    """Run one scenario file on a migrated, empty database and a Redis it may flush; each
    account's standing and balance as evaluated go to ``points`` (for a chart). ``read``
    reads the file: with its includes beside it by default."""
    try:
        scenario = read(scenario_path)
    except ScenarioError as exc:
        out.write(f"== {scenario_path}: not a valid scenario\n")
        out.writelines(f"  {problem}\n" for problem in exc.problems)
        return False
    client = redis_connection.connect(redis_url)
    try:
        await redis_connection.flush_everything(client)
    finally:
        await client.aclose()
    async with running_stack(database_url, redis_url) as stack, aiohttp.ClientSession() as http:
        simulation = Simulation(
            scenario,
            http,
            api=stack.api,
            gateway=stack.gateway,
            operator_key=stack.operator_key,
            out=out,
        )
        simulation.points = points  # filled as it runs, when a chart is wanted
        return await simulation.run()


@contextlib.contextmanager
def _private_redis(workdir: Path) -> Iterator[str]:
    port = free_port()
    process = start_redis(port, workdir)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def simulate_files(
    paths: Sequence[Path],
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    out: TextIO = sys.stdout,
    points: list[dict[str, str]] | None = None,
    read: Callable[[Path], Scenario] = load_scenario,
) -> int:
    """Run each file; returns how many failed. Without URLs, each file gets a new SQLite
    database and all share a private redis-server, so nothing outside is touched."""
    failed = 0
    with tempfile.TemporaryDirectory(prefix="tollgate-simulate-") as scratch:
        with contextlib.ExitStack() as resources:
            redis = redis_url or resources.enter_context(_private_redis(Path(scratch) / "redis"))
            for n, path in enumerate(paths):
                database = database_url or f"sqlite:///{Path(scratch) / f'scenario-{n}.db'}"
                await asyncio.to_thread(upgrade, database)
                if not await simulate(path, database, redis, out, points, read):
                    failed += 1
                out.write("\n")
    return failed
