"""Every timeline under tests/scenarios/ runs on the real stack, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from tollgate.simulate.command import simulate

SCENARIOS = sorted((Path(__file__).parents[2] / "scenarios").glob("*.yaml"))


def test_there_are_scenarios_for_every_feature() -> None:
    assert len(SCENARIOS) >= 30


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
async def test_scenario(path: Path, database_url: str, redis_url: str) -> None:
    out = io.StringIO()
    passed = await simulate(path, database_url, redis_url, out)
    assert passed, out.getvalue()


def test_simulate_prints_the_timeline_and_fails_on_a_wrong_expectation(tmp_path: Path) -> None:
    good = SCENARIOS[0]
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(good.read_text().replace('amount: "17.00"', 'amount: "17.01"', 1))
    result = subprocess.run(
        [sys.executable, "-m", "tollgate.cli", "simulate", str(good), str(wrong)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "invoice 2027-01-15 for ann: total 17.00" in result.stdout
    assert "expected, not found: {'kind': 'recurring', 'amount': '17.01'" in result.stdout
    assert result.stdout.rstrip().endswith("1 of 2 scenario(s) passed")
