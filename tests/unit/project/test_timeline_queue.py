"""The console's timeline queue shares its run slots fairly: a tenant holds one slot at a
time, may keep two runs waiting, and another tenant's first run goes before its second."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from billing_worker.api.console.timeline_runs import QueueFull, RunState, TimelineQueue


class Runs:
    """A runner whose runs end when the test says so."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self._ends: dict[str, asyncio.Event] = {}

    async def __call__(self, scenario: str) -> dict[str, Any]:
        self.started.append(scenario)
        end = self._ends.setdefault(scenario, asyncio.Event())
        await end.wait()
        return {"output": f"ran {scenario}", "passed": True}

    async def finish(self, scenario: str) -> None:
        self._ends.setdefault(scenario, asyncio.Event()).set()
        for _ in range(5):
            await asyncio.sleep(0)


async def test_one_tenant_never_holds_back_another() -> None:
    runs, now = Runs(), [0.0]
    queue = TimelineQueue(runs, slots=2, waiting_per_tenant=2, clock=lambda: now[0])
    a1, a2, a3 = (queue.submit("acme", f"a{n}") for n in (1, 2, 3))
    with pytest.raises(QueueFull):
        queue.submit("acme", "a4")
    b1 = queue.submit("beta", "b1")
    c1 = queue.submit("corp", "c1")
    await asyncio.sleep(0)
    # acme holds one slot; beta got the other at once, though acme asked first
    assert runs.started == ["a1", "b1"]
    assert (a1.state, b1.state, a2.state) == (RunState.RUNNING, RunState.RUNNING, RunState.WAITING)
    # corp's first run goes before acme's second and third
    assert [queue.place(r).ahead for r in (c1, a2, a3)] == [0, 1, 2]
    # another tenant cannot see a run
    assert queue.get("beta", a1.id) is None
    assert queue.get("acme", a1.id) is a1

    now[0] = 10.0
    await runs.finish("b1")
    assert runs.started == ["a1", "b1", "c1"]
    assert queue.get("beta", b1.id).result == {"output": "ran b1", "passed": True}  # type: ignore[union-attr]
    await runs.finish("a1")
    assert runs.started[-1] == "a2"
    # both slots busy (c1, a2): a3 starts when the first of them ends, about a run's length
    now[0] = 12.0
    place = queue.place(a3)
    assert place.ahead == 0
    assert 0 < place.wait_seconds <= 10
    await queue.stop()
    assert a3.state is RunState.WAITING  # nothing starts once stopped


async def test_a_waiting_runs_estimate_counts_the_runs_ahead() -> None:
    runs, now = Runs(), [0.0]
    queue = TimelineQueue(runs, slots=1, waiting_per_tenant=2, clock=lambda: now[0])
    first = queue.submit("acme", "x1")
    await asyncio.sleep(0)
    now[0] = 30.0
    await runs.finish("x1")  # runs last 30 s here
    assert first.state is RunState.FINISHED
    running = queue.submit("acme", "x2")
    await asyncio.sleep(0)
    others = [queue.submit(t, f"{t}1") for t in ("beta", "corp", "dyne")]
    assert running.state is RunState.RUNNING
    # one slot: beta waits for x2 (30 s), corp for x2 and beta, dyne for three runs
    assert [(queue.place(r).ahead, queue.place(r).wait_seconds) for r in others] == [
        (0, 30),
        (1, 60),
        (2, 90),
    ]
    await queue.stop()
