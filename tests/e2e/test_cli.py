"""The one-shot commands as a user runs them from the repository."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import OPERATOR, Processes
from tollgate.redis_server import free_port

pytestmark = pytest.mark.e2e


def _tollgate(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
    return subprocess.run(
        [sys.executable, "-m", "tollgate.cli", *args], cwd=cwd, env={**clean, **env},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_commands_share_up_s_database_and_say_when_it_is_not_migrated(
    tmp_path: Path, redis_url: str
) -> None:
    # Run from a fresh directory, as after a clone: no .tollgate/ yet.
    command = ("invoice-run", "--quiet", "--redis-url", redis_url)
    refused = _tollgate(*command, cwd=tmp_path)
    assert refused.returncode == 2
    assert "has no Tollgate tables" in refused.stderr
    assert "tollgate db upgrade" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "tollgate.db").exists()  # no stray database beside the code

    upgraded = _tollgate("db", "upgrade", cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert (tmp_path / ".tollgate" / "tollgate.db").exists()  # where `tollgate up` keeps it
    ran = _tollgate(*command, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "0 accounts, 0 invoices" in ran.stdout


def test_a_second_worker_on_one_sqlite_database_is_refused(
    processes: Processes, database_url: str, redis_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("several workers share a PostgreSQL database")
    second = subprocess.run(
        [sys.executable, "-m", "tollgate.cli", "worker", "--database-url", database_url,
         "--redis-url", redis_url, "--port", str(free_port())],
        env={**os.environ, "TOLLGATE_OPERATOR_KEY": OPERATOR},
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert second.returncode == 2
    assert "another Tollgate worker is running on" in second.stderr
    assert "use PostgreSQL" in second.stderr
    assert "Traceback" not in second.stderr
    with urllib.request.urlopen(f"{processes.api}/healthz", timeout=5) as response:
        assert response.status == 200  # the first one carries on
