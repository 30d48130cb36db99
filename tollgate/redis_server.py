"""Find, install (Debian, as root) and start a private redis-server (``tollgate up``, tests)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

INSTALL_HINT = (
    "redis-server was not found on PATH. Install it (Debian/Ubuntu: "
    "'sudo apt-get install redis-server'; macOS: 'brew install redis'), "
    "or point Tollgate at a running Redis with --redis-url / TOLLGATE_REDIS_URL."
)


class RedisUnavailable(RuntimeError):
    """No redis-server can be started."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_redis_server(*, install: bool = True, log: bool = True) -> str:
    """Path of redis-server; installs Debian's package when missing and we are root."""
    path = shutil.which("redis-server")
    if path:
        return path
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        if log:
            print("redis-server is missing: installing Debian's redis-server package ...")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "redis-server"], check=True, env=env)
        path = shutil.which("redis-server")
        if path:
            return path
    raise RedisUnavailable(INSTALL_HINT)


def wait_for_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """A throwaway redis-server on 127.0.0.1:``port`` keeping nothing on disk."""
    binary = find_redis_server()
    workdir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--logfile",
            str(workdir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
    except TimeoutError:
        process.kill()
        raise
    return process
