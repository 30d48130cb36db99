"""Slow clients cannot exhaust the gateway (issue #29): connections that send their headers a
byte at a time are closed after the header timeout, one address holds only so many, and
the total stays below the process's file-descriptor limit — so real requests, from another
address, are answered all along. The gateway runs under a lowered open-file limit."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import OPERATOR, Processes

FILES = 256  # the gateway's open-file limit here (systemd's default is 1024)
PER_PEER = 40
HEADER_SECONDS = 2.0


@pytest.fixture
def process_env() -> dict[str, str]:
    return {
        "TOLLGATE_GATEWAY_HEADER_TIMEOUT": str(HEADER_SECONDS),
        "TOLLGATE_GATEWAY_MAX_CONNECTIONS_PER_PEER": str(PER_PEER),
    }


@pytest.fixture
def gateway_prefix() -> list[str]:
    return ["prlimit", f"--nofile={FILES}:{FILES}", "--"]


async def _slow_client(port: int, source: str, closed: list[float], started: float) -> None:
    """Open a connection from ``source`` and send a request's headers a byte at a time."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    except OSError:
        closed.append(0.0)
        return
    try:
        writer.write(b"GET /v1/auth HTTP/1.1\r\n")
        while True:
            writer.write(b"X")
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                if await asyncio.wait_for(reader.read(1), 0.5) == b"":
                    break  # closed by the gateway
    except OSError:
        pass
    finally:
        closed.append(time.monotonic() - started)
        writer.close()


async def test_slow_headers_are_cut_off_and_real_requests_go_on(
    processes: Processes, tmp_path: Path
) -> None:
    port = int(processes.gateway.rsplit(":", 1)[1])
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{processes.api}/v1/tenants", json={"name": "Busy"},
            headers={"Authorization": f"Bearer {OPERATOR}"},
        ) as answer:  # fmt: skip
            key = {"Authorization": f"Bearer {(await answer.json())['gateway_key']}"}
    real = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0), force_close=True)
    async with aiohttp.ClientSession(connector=real) as client:

        async def authorize() -> int:
            async with client.post(
                f"{processes.gateway}/v1/authorize", json={"user": "ann"}, headers=key
            ) as answer:
                return answer.status

        for _ in range(100):  # the key is published
            if await authorize() == 200:
                break
            await asyncio.sleep(0.05)
        started, closed = time.monotonic(), []
        # 500 slow connections from four addresses: more than the process has descriptors
        attack = [
            asyncio.create_task(_slow_client(port, f"127.0.1.{n % 4 + 1}", closed, started))
            for n in range(500)
        ]
        answers = []
        while time.monotonic() - started < HEADER_SECONDS * 2.5:
            answers.append(await authorize())  # a new connection each time
        await asyncio.wait_for(asyncio.gather(*attack), HEADER_SECONDS * 5)
    # every real request was answered, on a new connection each, during the whole attack
    assert answers
    assert set(answers) == {200}, answers
    # the held ones were cut off at the header timeout, not held as long as they liked
    assert len(closed) == 500
    assert max(closed) < HEADER_SECONDS * 4
    async with aiohttp.ClientSession() as http, http.get(f"{processes.gateway}/metrics") as m:
        metrics = await m.text()
    refused = {
        line.split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("tollgate_gateway_connections_refused_total{")
    }
    assert refused["per_peer"] >= 500 - 4 * PER_PEER
    assert refused["slow_headers"] >= 1
    log = (tmp_path / "gateway.log").read_text()
    assert "gateway.connections_refused reason=per_peer" in log
    assert "gateway.connections_refused reason=slow_headers" in log
    assert "Too many open files" not in log
    assert "Traceback" not in log
