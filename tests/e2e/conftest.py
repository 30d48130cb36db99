"""Fixtures for the end-to-end tests: Tollgate's own processes, started as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tollgate.redis_server import free_port, wait_for_port

OPERATOR = "tgop_e2e_operator"


@dataclass
class Processes:
    api: str
    gateway: str


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tollgate.cli", *args], env=env, stdout=out, stderr=out
        )


@pytest.fixture
def processes(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Processes]:
    api_port, gateway_port = free_port(), free_port()
    env = {
        **os.environ,
        "TOLLGATE_OPERATOR_KEY": OPERATOR,
        "TOLLGATE_TEST_MODE": "true",
        "TOLLGATE_SCHEDULER_INTERVAL": "0.5",
    }
    upgrade = subprocess.run(
        [sys.executable, "-m", "tollgate.cli", "db", "upgrade", "--database-url", database_url],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    common = ["--redis-url", redis_url]
    children = [
        _start(["worker", "--database-url", database_url, *common, "--port", str(api_port)],
               env, tmp_path / "worker.log"),
        _start(["gateway", *common, "--port", str(gateway_port)], env, tmp_path / "gateway.log"),
    ]  # fmt: skip
    try:
        wait_for_port(api_port, timeout=20)
        wait_for_port(gateway_port, timeout=20)
        yield Processes(
            api=f"http://127.0.0.1:{api_port}", gateway=f"http://127.0.0.1:{gateway_port}"
        )
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                pytest.fail(f"{child.args} ignored SIGTERM")
