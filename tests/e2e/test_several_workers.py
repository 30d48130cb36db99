"""Several `tollgate worker` processes on one PostgreSQL database share every job with
nothing done twice, and a management API of its own (`tollgate api`) serves beside them:
requests spread over all of them, a month passes on the test clock, and each
account has one invoice per period, one charge per invoice, and each advisory webhook
arrives once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from tests.e2e.conftest import OPERATOR
from tollgate.redis_server import free_port, wait_for_port

pytestmark = pytest.mark.e2e

ACCOUNTS = 12


@pytest.fixture
def workers(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[list[str]]:
    if not database_url.startswith("postgresql"):
        pytest.skip("several workers share a PostgreSQL database; SQLite runs one")
    env = {
        **os.environ,
        "TOLLGATE_OPERATOR_KEY": OPERATOR,
        "TOLLGATE_TEST_MODE": "true",
        "TOLLGATE_SCHEDULER_INTERVAL": "0.2",
        "TOLLGATE_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    }
    cli = [sys.executable, "-m", "tollgate.cli"]
    subprocess.run(
        [*cli, "db", "upgrade", "--database-url", database_url],
        env=env,
        check=True,
        capture_output=True,
    )
    # Two workers serving the API too, one with no port open (`worker --no-api`), and one
    # management API on its own (`tollgate api`): requests go to every open port.
    roles = [["worker"], ["worker"], ["worker", "--no-api"], ["api"]]
    ports = [free_port() for _ in roles]
    children = []
    where = ["--database-url", database_url, "--redis-url", redis_url]
    for n, (role, port) in enumerate(zip(roles, ports, strict=True)):
        command = [*cli, *role, *where, "--port", str(port)]
        with (tmp_path / f"{role[0]}{n}.log").open("wb") as log:
            children.append(subprocess.Popen(command, env=env, stdout=log, stderr=log))
    serving = [port for role, port in zip(roles, ports, strict=True) if "--no-api" not in role]
    try:
        for port in serving:
            wait_for_port(port, timeout=20)
        jobs_only = children[roles.index(["worker", "--no-api"])]
        assert jobs_only.poll() is None, "the worker with no API runs"
        with pytest.raises(TimeoutError, match="nothing listens"):  # ...and listens nowhere
            wait_for_port(ports[roles.index(["worker", "--no-api"])], timeout=0.5)
        yield [f"http://127.0.0.1:{port}" for port in serving]
    finally:
        for child in children:
            child.terminate()
        for child in children:
            assert child.wait(timeout=15) == 0  # each stops cleanly on SIGTERM


@pytest.fixture
async def hooks() -> AsyncIterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hook", received
    finally:
        await runner.cleanup()


async def _call(
    http: aiohttp.ClientSession, method: str, url: str, key: str, body: Any = None
) -> Any:
    async with http.request(
        method, url, json=body, headers={"Authorization": f"Bearer {key}"}
    ) as response:
        assert response.status < 300, (method, url, response.status, await response.text())
        return await response.json() if response.status != 204 else None


async def test_several_workers_bill_charge_and_notify_once(
    workers: list[str], hooks: tuple[str, list[bytes]]
) -> None:
    hook_url, received = hooks
    async with aiohttp.ClientSession() as http:
        tenant = await _call(
            http,
            "POST",
            f"{workers[0]}/v1/tenants",
            OPERATOR,
            {"name": "Shared", "notify_webhook_url": hook_url},
        )
        admin = tenant["admin_key"]
        await _call(
            http,
            "POST",
            f"{workers[1]}/v1/plans",
            admin,
            {"code": "pro", "name": "Pro", "currency": "USD", "amount": "30.00"},
        )
        accounts = []
        for n in range(ACCOUNTS):
            api = workers[n % len(workers)]  # requests spread over the workers and the API
            account = await _call(http, "POST", f"{api}/v1/accounts", admin, {"name": f"C{n}"})
            card = "tok_sandbox_success" if n % 3 else "tok_sandbox_insufficient_funds"
            await _call(
                http,
                "POST",
                f"{api}/v1/accounts/{account['id']}/payment-methods",
                admin,
                {"token": card},
            )
            await _call(
                http,
                "POST",
                f"{api}/v1/accounts/{account['id']}/subscriptions",
                admin,
                {"plan": "pro"},
            )
            accounts.append(account["id"])

        # A month passes; two workers are asked to run the day's invoices at the same time.
        await _call(
            http,
            "POST",
            f"{workers[2]}/v1/test/clock",
            OPERATOR,
            {"advance_days": 31, "settle": False},
        )
        day = (await _call(http, "GET", f"{workers[0]}/v1/test/clock", admin))["now"][:10]
        runs = await asyncio.gather(
            *(
                http.post(
                    f"{api}/v1/invoice-runs",
                    json={"target_date": day},
                    headers={"Authorization": f"Bearer {admin}"},
                )
                for api in workers[-2:]  # a worker and the API tier
            )
        )
        assert len({(await r.json())["id"] for r in runs}) == 1  # one run, however asked

        async def invoices_of(account: str) -> list[dict[str, Any]]:
            found = await _call(http, "GET", f"{workers[0]}/v1/accounts/{account}/invoices", admin)
            return list(found["data"])

        # Liveness on a loaded 2-core CI machine (three workers, an API, PostgreSQL) can take
        # a while; what this test asserts is that nothing is done twice.
        deadline = time.monotonic() + 180
        while True:
            counts = [len(await invoices_of(a)) for a in accounts]
            attempts = [
                len(
                    (
                        await _call(
                            http, "GET", f"{workers[1]}/v1/accounts/{a}/payment-attempts", admin
                        )
                    )["data"]
                )
                for a in accounts
            ]
            if all(c >= 2 for c in counts) and all(a >= 2 for a in attempts):
                break
            if time.monotonic() >= deadline:
                lagging = [
                    await _call(http, "GET", f"{workers[0]}/v1/accounts/{a}", admin)
                    for a, c, n in zip(accounts, counts, attempts, strict=True)
                    if c < 2 or n < 2
                ]
                raise AssertionError(
                    f"not billed and charged in time: {counts} {attempts} {lagging}"
                )
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # any duplicate would have been made by now

        for account in accounts:
            invoices = await invoices_of(account)
            periods = Counter(
                (item["start_date"], item["end_date"])
                for invoice in invoices
                for item in invoice["items"]
                if item["kind"] == "recurring"
            )
            assert len(invoices) == 2, invoices
            assert all(n == 1 for n in periods.values()), periods  # no period billed twice
            attempts = (
                await _call(
                    http, "GET", f"{workers[2]}/v1/accounts/{account}/payment-attempts", admin
                )
            )["data"]
            keys = [a["idempotency_key"] for a in attempts]
            assert len(keys) == len(set(keys))  # no charge made twice
            payments = (
                await _call(http, "GET", f"{workers[0]}/v1/accounts/{account}/payments", admin)
            )["data"]
            assert len(payments) == sum(a["status"] == "succeeded" for a in attempts)

        messages = (await _call(http, "GET", f"{workers[-1]}/v1/messages", admin))["data"]
        assert messages, "the declined cards sent advisory messages"

        async def delivered() -> bool:
            return len(received) >= len(messages)

        deadline = time.monotonic() + 30
        while not await delivered():
            assert time.monotonic() < deadline, (len(received), len(messages))
            await asyncio.sleep(0.3)
        await asyncio.sleep(2)
        ids = Counter(orjson.loads(raw).get("id") for raw in received)
        assert all(n == 1 for n in ids.values()), ids  # each webhook arrived once
        assert len(ids) == len(messages)
