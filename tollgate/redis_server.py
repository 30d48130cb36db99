"""Find, install (Debian, as root) and start a private redis-server (``tollgate up``, tests)."""

from __future__ import annotations

import os
import random
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


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(*, plus: int = 0) -> int:
    """A local port nobody listens on, for a server started a moment later; with ``plus``,
    ``port + plus`` is free too (a cluster node's bus port is its port + 10,000).

    Chosen below the kernel's ephemeral range: a port the kernel handed out
    (bind to port 0) can be handed out again at once as the source port of an
    outgoing connection (to Redis, to PostgreSQL) before our server binds it.
    """
    low, high = _ephemeral_range()
    candidates = (
        range(10_000, low - plus) if low > 11_000 + plus else range(high + 1, 65_536 - plus)
    )
    for _ in range(100):
        port = random.choice(candidates)
        if _bindable(port) and (not plus or _bindable(port + plus)):
            return port
    raise RuntimeError("no free local port found")


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


def start_redis(
    port: int, workdir: Path, *, extra: list[str] | None = None
) -> subprocess.Popen[bytes]:
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
            *(extra or []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        process_group=0,  # a terminal's Ctrl-C must not stop it before the services using it
    )
    try:
        wait_for_port(port)
    except TimeoutError:
        process.kill()
        raise
    return process


#: A cluster node talks to the others on its port plus this.
CLUSTER_BUS_OFFSET = 10_000


class RedisClusterProcesses:
    """A Redis Cluster on loopback: ``masters`` primaries with one replica each, keeping
    nothing on disk (tests, benchmarks). ``url`` names every node for ``TOLLGATE_REDIS_URL``.
    """

    def __init__(self, workdir: Path, *, masters: int = 3, node_timeout_ms: int = 2000) -> None:
        self.node_timeout_ms = node_timeout_ms
        self.ports: list[int] = []
        while len(self.ports) < masters * 2:
            port = free_port(plus=CLUSTER_BUS_OFFSET)
            if port not in self.ports and port + CLUSTER_BUS_OFFSET not in self.ports:
                self.ports.append(port)
        self._workdir = workdir
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        for port in self.ports:
            self.start_node(port)
        create = [shutil.which("redis-cli") or "redis-cli", "--cluster", "create"]
        create += [f"127.0.0.1:{port}" for port in self.ports]
        create += ["--cluster-replicas", "1", "--cluster-yes"]
        subprocess.run(create, check=True, capture_output=True, timeout=60)
        self.wait_until_ok()
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start_node(self, port: int) -> None:
        """(Re)start one node; its ``nodes.conf`` brings it back into the cluster."""
        node_dir = self._workdir / str(port)
        self.processes[port] = start_redis(
            port,
            node_dir,
            extra=[
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(node_dir / "nodes.conf"),
                "--cluster-node-timeout", str(self.node_timeout_ms),
                "--repl-diskless-sync-delay", "0",
            ],
        )  # fmt: skip

    def info(self, port: int, *command: str) -> str:
        cli = shutil.which("redis-cli") or "redis-cli"
        done = subprocess.run(
            [cli, "-p", str(port), *command], capture_output=True, text=True, timeout=10
        )
        return done.stdout

    def masters(self) -> list[int]:
        """Ports of the nodes serving slots now."""
        alive = [port for port, process in self.processes.items() if process.poll() is None]
        for port in alive:
            lines = self.info(port, "cluster", "nodes").splitlines()
            return sorted(
                int(line.split()[1].split("@")[0].rsplit(":", 1)[1])
                for line in lines
                if "master" in line.split()[2]
                and "fail" not in line.split()[2]
                and len(line.split()) > 8
            )
        return []

    def wait_until_ok(self, timeout: float = 30.0) -> None:
        """Until every node says the cluster is ok and every replica is in sync."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive = [port for port, process in self.processes.items() if process.poll() is None]
            states = [self.info(port, "cluster", "info") for port in alive]
            replication = [self.info(port, "info", "replication") for port in alive]
            synced = all(
                "role:slave" not in info or "master_link_status:up" in info for info in replication
            )  # a replica that never synced cannot take over
            if states and all("cluster_state:ok" in state for state in states) and synced:
                return
            time.sleep(0.1)
        raise TimeoutError(f"the cluster is not ok after {timeout}s")

    def stop_node(self, port: int) -> None:
        process = self.processes[port]
        process.kill()
        process.wait(timeout=5)

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
