"""``tollgate up`` as a user runs it: it prints working allow and deny curls, and a
signal stops everything it started, Redis included."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.e2e.conftest import start_up, stop_up
from tollgate.redis_server import free_port

pytestmark = pytest.mark.e2e


def _curl(line: str) -> str:
    return subprocess.run(
        shlex.split(line.strip()), capture_output=True, text=True, check=True, timeout=10
    ).stdout


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_up_prints_an_allow_and_a_deny_and_stops_everything(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    api, gateway = free_port(), free_port()
    command = [sys.executable, "-m", "tollgate.cli", "up", "--state-dir", str(tmp_path),
               "--api-port", str(api), "--gateway-port", str(gateway)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
    up = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert up.stdout is not None
    children: list[psutil.Process] = []
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while not any("Press Ctrl-C" in line for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            line = up.stdout.readline()
            assert line or up.poll() is None, "".join(lines)
            lines.append(line)
        output = "".join(lines)
        children = psutil.Process(up.pid).children(recursive=True)
        assert {c.name() for c in children} >= {"redis-server"}

        allow_curl = re.search(r"An allow.*\n\s+(curl .*)\n", output)
        deny_curl = re.search(r"A deny.*\n\s+(curl .*)\n", output)
        assert allow_curl, output
        assert deny_curl, output
        assert '"allow":true' in _curl(allow_curl.group(1))
        denied = _curl(deny_curl.group(1))
        assert '"allow":false' in denied
        assert '"payment_overdue"' in denied
        console = re.search(r"console\s+(http://\S+)", output)
        assert console, output
        page = subprocess.run(["curl", "-sL", console.group(1)], capture_output=True, text=True)
        assert "Sign in" in page.stdout  # the console's sign-in page, where the banner says

        up.send_signal(stop_signal)
        assert up.wait(timeout=30) == 0
        survivors = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    finally:  # whatever failed, leave nothing running behind
        if up.poll() is None:
            up.kill()
            up.wait()
        up.stdout.close()
        for child in children:
            if child.is_running():
                child.kill()
    assert survivors == []  # up stopped everything it started, Redis included


def test_a_port_already_taken_is_named_before_anything_starts(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        command = [sys.executable, "-m", "tollgate.cli", "up", "--state-dir", str(tmp_path),
                   "--api-port", str(port), "--gateway-port", str(free_port())]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
        up = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    finally:
        taken.close()
    assert up.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in up.stderr
    assert "--api-port" in up.stderr
    assert "Traceback" not in up.stderr + up.stdout
    assert not (tmp_path / "redis").exists()  # nothing was started


def test_a_restart_keeps_what_happened_the_payment_and_the_clock(tmp_path: Path) -> None:
    up, banner = start_up(tmp_path)
    try:
        pay = re.search(r"Pay globex's debt \(([\d.]+) USD\).*?\n\s+(curl .*?)\n(?=\n)", banner,
                        re.S)  # fmt: skip
        assert pay, banner
        assert pay.group(1) == "98.00"  # two months of Pro at 49.00
        paid = _curl(pay.group(2).replace("\\\n", " "))
        assert '"amount":"98.00"' in paid
        api = re.search(r"management API\s+(http://\S+)", banner)
        operator = re.search(r"operator key\s+(\S+)", banner)
        assert api
        assert operator
        moved = _curl(
            f"curl -s -X POST {api.group(1)}/v1/test/clock -H 'Authorization: Bearer "
            f"{operator.group(1)}' -d '{{\"advance_days\": 3}}'"
        )
        assert '"offset_seconds":259200' in moved
    finally:
        stop_up(up)

    again, banner = start_up(tmp_path)  # the same state dir
    try:
        assert "A deny" not in banner  # globex paid: both demo users are allowed now
        assert re.search(r"An allow \(globex: active, in_good_standing\)", banner), banner
        assert "globex has paid its debt" in banner
        assert "The test clock is 3.0 days ahead, as left." in banner
    finally:
        stop_up(again)
    for log in ("billing_worker.log", "gateway.log"):  # stopped before their Redis, quietly
        text = (tmp_path / "logs" / log).read_text()
        assert "follow_lost" not in text, text[-2000:]
        assert "Connection refused" not in text, text[-2000:]
