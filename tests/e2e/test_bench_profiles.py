"""`tollgate bench --profile` draws where a server's time goes: the flame graph of a process
under work names the function that does the work, and it is written whatever the process
was doing when sampling stopped."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tollgate.bench import flames
from tollgate.bench.harness import Bench, Profile

pytestmark = pytest.mark.e2e

BUSY = """
def checksum_every_ledger_line():
    return sum(i * i for i in range(20_000))

while True:
    checksum_every_ledger_line()
"""


def test_the_flame_graph_of_a_busy_process_names_its_work(tmp_path: Path) -> None:
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        time.sleep(0.5)
        bench = Bench(Profile.quick(), tmp_path, None, flame_graphs=tmp_path / "profiles")
        with bench.sampled(busy.pid, "Tollgate /v1/auth, warm near-cache"):
            time.sleep(1.5)
    finally:
        busy.kill()
        busy.wait()
    svg = tmp_path / "profiles" / "tollgate-v1-auth-warm-near-cache.svg"
    assert bench.results.profiles == {
        "Tollgate /v1/auth, warm near-cache": "profiles/tollgate-v1-auth-warm-near-cache.svg"
    }
    drawing = svg.read_text()
    assert "<svg" in drawing
    assert "checksum_every_ledger_line" in drawing


def test_without_profile_nothing_is_sampled(tmp_path: Path) -> None:
    bench = Bench(Profile.quick(), tmp_path, None)
    with bench.sampled(1, "anything"):
        pass
    assert bench.results.profiles == {}
    assert not list(tmp_path.iterdir())


def test_a_missing_py_spy_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(flames.ProfilerMissing, match="pip install"):
        flames.py_spy()
