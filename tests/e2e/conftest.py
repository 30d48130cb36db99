"""Fixtures for the end-to-end tests: Tollgate's own processes, started as a user would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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


def _start(
    args: list[str], env: dict[str, str], log: Path, prefix: list[str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [*(prefix or []), sys.executable, "-m", "tollgate.cli", *args],
            env=env, stdout=out, stderr=out,
        )  # fmt: skip


@pytest.fixture
def process_env() -> dict[str, str]:
    """Variables a test module adds to the processes' environment (override it)."""
    return {}


@pytest.fixture
def gateway_prefix() -> list[str]:
    """A command the gateway is started under (override it: ``prlimit --nofile=…``)."""
    return []


@pytest.fixture
def processes(
    database_url: str,
    redis_url: str,
    tmp_path: Path,
    process_env: dict[str, str],
    gateway_prefix: list[str],
) -> Iterator[Processes]:
    api_port, gateway_port = free_port(), free_port()
    env = {
        **os.environ,
        "TOLLGATE_OPERATOR_KEY": OPERATOR,
        "TOLLGATE_TEST_MODE": "true",
        "TOLLGATE_SCHEDULER_INTERVAL": "0.5",
        **process_env,
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
        _start(["gateway", *common, "--port", str(gateway_port)], env, tmp_path / "gateway.log",
               gateway_prefix),
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


def start_up(state: Path) -> tuple[subprocess.Popen[str], str]:
    """``tollgate up`` on ``state``, once its banner is out; returns it and the banner."""
    command = [sys.executable, "-m", "tollgate.cli", "up", "--state-dir", str(state),
               "--api-port", str(free_port()), "--gateway-port", str(free_port())]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
    up = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        process_group=0,  # its own group, as a terminal's foreground job is
    )
    assert up.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while not any("Press Ctrl-C" in line for line in lines):
        if time.monotonic() > deadline or (up.poll() is not None and not lines[-1:]):
            up.kill()
            raise AssertionError("".join(lines))
        lines.append(up.stdout.readline())
    return up, "".join(lines)


def stop_up(up: subprocess.Popen[str]) -> None:
    """Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group."""
    os.killpg(up.pid, signal.SIGINT)
    assert up.wait(timeout=30) == 0
    assert up.stdout is not None
    up.stdout.close()
