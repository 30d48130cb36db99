"""``tollgate gateway --processes 2``: two processes share one port, a signal stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from tollgate.redis_server import free_port, wait_for_port

pytestmark = pytest.mark.e2e


def listeners(port: int) -> set[int]:
    return {
        c.pid
        for c in psutil.net_connections("tcp")
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid
    }


def test_two_processes_share_the_port_and_stop_together(redis_url: str) -> None:
    port = free_port()
    env = {**os.environ, "TOLLGATE_REDIS_URL": redis_url}
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "tollgate.cli", "gateway", "--port", str(port), "--processes", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=20)
        workers = psutil.Process(supervisor.pid).children()
        assert len(workers) == 2
        deadline = time.monotonic() + 20
        while not {w.pid for w in workers} <= listeners(port):  # both bind it: SO_REUSEPORT
            assert time.monotonic() < deadline, listeners(port)
            time.sleep(0.1)
        for _ in range(20):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                assert r.status == 200
    finally:
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=20) == 0
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
