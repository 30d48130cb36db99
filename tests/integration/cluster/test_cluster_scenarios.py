"""On a Redis Cluster: timelines that lean on Redis the most (seat limits and evictions,
usage counted at login, dunning through to suspension, a worker down over a weekend),
each with the same expectations as on one Redis."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tollgate.simulate.command import simulate

SCENARIOS = Path(__file__).parents[2] / "scenarios"
ON_A_CLUSTER = [
    "15-seats-are-the-session-limit",
    "16-seat-eviction",
    "42-usage-recorded-once",
    "47-classic-dunning-reminders-retries-day-31",
    "58-weekend-outage-jump-to-day-31",
]


@pytest.mark.parametrize("name", ON_A_CLUSTER)
async def test_scenario_on_a_cluster(name: str, database_url: str, cluster_url: str) -> None:
    out = io.StringIO()
    assert await simulate(SCENARIOS / f"{name}.yaml", database_url, cluster_url, out), (
        out.getvalue()
    )
