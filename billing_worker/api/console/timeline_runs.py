"""The console's timeline runs: each a ``tollgate simulate`` process held in a sandbox, and a
queue that shares the API process's few run slots fairly between tenants.

A scenario is a tenant's text, so its run gets nothing of the server: an environment with
no Tollgate setting or secret (no operator key, sealing key, database or Redis URL), a
scratch directory of its own as its working directory and home, a scenario that may name
no file (``--inline-only``), and a CPU-time and address-space limit. Runs share
``slots`` (a simulation is a worker, a gateway and a redis-server of its own); a tenant
holds at most one of them and may keep ``waiting_per_tenant`` more waiting, and the next
slot goes to the longest-waiting run whose tenant has none running, so one tenant's
scenarios never hold another's back for more than one run's length. A waiting run knows
its place and an estimate of its wait from the last runs' lengths.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import sys
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

#: A run is stopped after this long on the clock, or this much CPU time, or address space.
RUN_SECONDS = 180
CPU_SECONDS = 120
MEMORY_MIB = 1536
#: What a waiting run's estimate assumes before any run has finished.
FIRST_GUESS_SECONDS = 15.0
#: How long a finished run's result can still be fetched.
KEPT_SECONDS = 15 * 60
#: The only variables of the server's environment a run sees: where programs and text
#: encodings are, nothing that configures Tollgate or holds a secret.
PASSED_ON = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
#: The program a run is: the simulate command, held to the limits above.
PROGRAM = (
    sys.executable, "-m", "tollgate.cli", "simulate", "scenario.yaml", "--inline-only",
    "--chart-data", "chart.json", "--cpu-seconds", str(CPU_SECONDS),
    "--memory-mib", str(MEMORY_MIB),
)  # fmt: skip

log = logging.getLogger(__name__)

Runner = Callable[[str], Awaitable[dict[str, Any]]]


class RunState(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(slots=True, eq=False)
class Run:
    id: str
    tenant_id: str
    scenario: str
    submitted: float
    state: RunState = RunState.WAITING
    started: float | None = None
    finished: float | None = None
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a waiting run stands: runs ahead of it and the seconds it may wait."""

    ahead: int
    wait_seconds: int


class QueueFull(Exception):
    """This tenant already has as many runs waiting as it may."""


class TimelineQueue:
    def __init__(
        self,
        runner: Runner,
        *,
        slots: int = 2,
        waiting_per_tenant: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._runner = runner
        self._slots = slots
        self._waiting_per_tenant = waiting_per_tenant
        self._clock = clock
        self._runs: dict[str, Run] = {}
        self._lengths: deque[float] = deque(maxlen=10)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False

    def submit(self, tenant_id: str, scenario: str) -> Run:
        """Queue a run, or raise ``QueueFull``; a free slot starts it at once."""
        self._forget_old()
        waiting = [r for r in self._runs.values() if r.tenant_id == tenant_id]
        if sum(r.state is RunState.WAITING for r in waiting) >= self._waiting_per_tenant:
            raise QueueFull
        run = Run(secrets.token_urlsafe(16), tenant_id, scenario, self._clock())
        self._runs[run.id] = run
        self._start_what_fits()
        return run

    def get(self, tenant_id: str, run_id: str) -> Run | None:
        """A run of this tenant's, or None (another tenant's runs are not found)."""
        run = self._runs.get(run_id)
        return run if run is not None and run.tenant_id == tenant_id else None

    def place(self, run: Run) -> Place:
        """How many runs start before this waiting one, and about how long that takes."""
        running = [r for r in self._runs.values() if r.state is RunState.RUNNING]
        order = self._start_order()
        ahead = order.index(run) if run in order else 0
        length = sum(self._lengths) / len(self._lengths) if self._lengths else FIRST_GUESS_SECONDS
        # the slots free as the running runs end, then one run's length per wave ahead
        now = self._clock()
        left = sorted(max(0.0, length - (now - (r.started or now))) for r in running)
        first = left[0] if len(left) >= self._slots else 0.0
        waves = ahead // self._slots
        return Place(ahead=ahead, wait_seconds=round(first + waves * length))

    async def stop(self) -> None:
        """Stop the runs under way (their processes are killed) and start no other."""
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _start_order(self) -> list[Run]:
        """Waiting runs in the order slots go to them: oldest first, but a tenant's later
        runs behind every other tenant's earlier ones (a round over the tenants)."""
        waiting = sorted(
            (r for r in self._runs.values() if r.state is RunState.WAITING),
            key=lambda r: r.submitted,
        )
        busy = {r.tenant_id for r in self._runs.values() if r.state is RunState.RUNNING}
        turns: dict[str, int] = {}
        keyed = []
        for run in waiting:
            turns[run.tenant_id] = turns.get(run.tenant_id, int(run.tenant_id in busy)) + 1
            keyed.append((turns[run.tenant_id], run.submitted, run))
        return [run for _turn, _submitted, run in sorted(keyed, key=lambda k: k[:2])]

    def _start_what_fits(self) -> None:
        if self._stopped:
            return
        running = [r for r in self._runs.values() if r.state is RunState.RUNNING]
        busy = {r.tenant_id for r in running}
        free = self._slots - len(running)
        for run in self._start_order():
            if free <= 0:
                break
            if run.tenant_id in busy:
                continue
            busy.add(run.tenant_id)
            free -= 1
            run.state, run.started = RunState.RUNNING, self._clock()
            task = asyncio.create_task(self._run(run), name=f"timeline-{run.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, run: Run) -> None:
        try:
            run.result = await self._runner(run.scenario)
        except Exception:  # the run's own failure, shown on its page; the queue goes on
            log.exception("timeline.failed run=%s", run.id)
            run.result = {"error": "The simulation could not be started; see the API's log."}
        finally:
            run.state, run.finished = RunState.FINISHED, self._clock()
            run.scenario = ""
            if run.started is not None:
                self._lengths.append(run.finished - run.started)
            self._start_what_fits()

    def _forget_old(self) -> None:
        now = self._clock()
        for run_id, run in list(self._runs.items()):
            if run.finished is not None and now - run.finished > KEPT_SECONDS:
                del self._runs[run_id]


async def simulate_in_sandbox(scenario: str) -> dict[str, Any]:
    """Run the scenario in a ``tollgate simulate`` process of its own; its printed timeline,
    whether it passed, and the chart's points."""
    with tempfile.TemporaryDirectory(prefix="tollgate-timeline-") as scratch:
        _write(Path(scratch), scenario)
        env = {k: v for k, v in os.environ.items() if k in PASSED_ON}
        env |= {"HOME": scratch, "TMPDIR": scratch}
        process = await asyncio.create_subprocess_exec(
            *PROGRAM, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            stdin=asyncio.subprocess.DEVNULL, cwd=scratch, env=env,
        )  # fmt: skip
        try:
            output, _ = await asyncio.wait_for(process.communicate(), RUN_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
            return {"error": f"The scenario ran longer than {RUN_SECONDS} s and was stopped."}
        except asyncio.CancelledError:  # the API is stopping: the run stops with it
            process.kill()
            await asyncio.shield(process.wait())
            raise
        points = _points(Path(scratch))
    if process.returncode is not None and process.returncode < 0:
        return {"error": "The scenario used more CPU time than a run may and was stopped."}
    text = output.decode(errors="replace")
    return {"output": text, "passed": process.returncode == 0, "points": points}


def _write(scratch: Path, scenario: str) -> None:
    (scratch / "scenario.yaml").write_text(scenario, encoding="utf-8")


def _points(scratch: Path) -> list[dict[str, str]]:
    chart = scratch / "chart.json"
    return list(json.loads(chart.read_text())["points"]) if chart.exists() else []
