"""``tollgate up``: Redis, migrations, the worker and the gateway, a demo, one command.

Everything it starts is a child process; Ctrl-C (or SIGTERM) stops them all, Redis too.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from redis.exceptions import RedisError

from billing_worker.db import sealed
from billing_worker.db.engine import create_engine, session_factory
from billing_worker.jobs.rebuild import rebuild
from billing_worker.migrate import upgrade
from shared import keys, redis_connection
from shared.clock import SystemClock
from shared.runtime import Supervisor, terminate
from tollgate.demo import Demo, load_demo, save_demo, seed_demo
from tollgate.redis_server import find_redis_server, free_port, start_redis, wait_for_port


@dataclass(frozen=True, kw_only=True, slots=True)
class UpOptions:
    state_dir: Path
    database_url: str | None
    redis_url: str | None
    api_port: int
    gateway_port: int
    host: str
    test_mode: bool


def _kept_secret(state_dir: Path, name: str, make: Callable[[], str]) -> str:
    """``TOLLGATE_<NAME>`` if set; else the one kept in the state dir, made the first time."""
    variable = f"TOLLGATE_{name.upper()}"
    if os.environ.get(variable):
        return os.environ[variable]
    path = state_dir / name
    if path.exists():
        return path.read_text().strip()
    value = make()
    path.write_text(value)
    path.chmod(0o600)
    return value


def _operator_key(state_dir: Path) -> str:
    return _kept_secret(state_dir, "operator_key", lambda: "tgop_" + secrets.token_urlsafe(24))


def _secrets_key(state_dir: Path) -> str:
    """The key sealing webhook secrets in this state dir's database."""
    return _kept_secret(state_dir, "secrets_key", sealed.new_key)


async def _wait_healthy(url: str, process: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"{name} exited with status {process.returncode}; see its log")
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{name} did not become healthy at {url}")


async def _rebuild_cache(database_url: str, redis_url: str) -> None:
    engine = create_engine(database_url)
    client = redis_connection.connect(redis_url)
    try:
        await rebuild(session_factory(engine), client, SystemClock())
    finally:
        await client.aclose()
        await engine.dispose()


async def _still_valid(demo: Demo, api_url: str) -> bool:
    """The saved demo's admin key still works (the database may have been replaced)."""
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {demo.admin_key}"}
        async with http.get(f"{api_url}/v1/tenant", headers=headers) as response:
            return response.status == 200


async def _demo(state_dir: Path, api_url: str, operator_key: str) -> tuple[Demo, bool]:
    """The demo tenant, and whether it was seeded just now."""
    path = state_dir / "demo.json"
    demo = load_demo(path)
    if demo is not None and await _still_valid(demo, api_url):
        return demo, False
    print("Seeding the demo tenant ...", flush=True)
    demo = await seed_demo(api_url, operator_key)
    save_demo(demo, path)
    return demo, True


async def _answers(demo: Demo, gateway_url: str, *, fresh: bool) -> dict[str, dict[str, Any]]:
    """Wait until the gateway answers for the demo's users, and return its answers.

    The demo is written through the outbox, which the worker publishes a moment later. A
    freshly seeded demo must answer as seeded (acme allowed, globex denied); a demo from an
    earlier run answers however its accounts stand now (globex may have paid since).
    """
    headers = {"Authorization": f"Bearer {demo.gateway_key}"}
    expected = {demo.allowed_user: True, demo.denied_user: False}
    deadline = time.monotonic() + 15
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            answers: dict[str, dict[str, Any]] = {}
            for user in expected:
                async with http.post(
                    f"{gateway_url}/v1/authorize", json={"user": user}, headers=headers
                ) as response:
                    body = await response.json() if response.status == 200 else {}
                if body.get("account"):
                    answers[user] = body
            published = len(answers) == len(expected)
            if published and (
                not fresh or all(answers[u]["allow"] is want for u, want in expected.items())
            ):
                return answers
            await asyncio.sleep(0.05)
    raise SystemExit(
        "the demo did not reach the gateway within 15 s; see the logs in "
        "the state directory's logs/ (or delete the state directory to start afresh)"
    )


async def _balance(demo: Demo, api_url: str, account: str) -> str:
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {demo.admin_key}"}
        async with http.get(f"{api_url}/v1/accounts/{account}", headers=headers) as response:
            return str((await response.json())["balance_due"])


def _banner(
    demo: Demo,
    answers: dict[str, dict[str, Any]],
    owed: str,
    gateway_url: str,
    api_url: str,
    operator_key: str,
) -> str:
    curl = (
        f"curl -s -X POST {gateway_url}/v1/authorize "
        f"-H 'Authorization: Bearer {demo.gateway_key}' -d '{{\"user\": \"%s\"}}'"
    )
    examples = []
    for name, user in (("acme", demo.allowed_user), ("globex", demo.denied_user)):
        answer = answers[user]
        kind = "An allow" if answer["allow"] else "A deny"
        examples.append(
            f"{kind} ({name}: {answer['standing']}, {answer['reason']}):\n  {curl % user}\n"
        )
    payment = (
        f"""Pay globex's debt ({owed} USD) and watch the deny turn into an allow:
  curl -s -X POST {api_url}/v1/accounts/{demo.accounts["globex"]}/payments \\
    -H 'Authorization: Bearer {demo.admin_key}' \\
    -d '{{"amount": "{owed}", "currency": "USD"}}'
"""
        if float(owed) > 0
        else "globex has paid its debt (delete the state directory for a fresh demo).\n"
    )
    return f"""
Tollgate is up.
  gateway          {gateway_url}      (POST /v1/authorize)
  management API   {api_url}      (OpenAPI: {api_url}/openapi.json)
  console          {api_url}/console      (sign in with the demo tenant's key below)

  operator key     {operator_key}
  demo tenant      {demo.tenant_id}
  admin key        {demo.admin_key}
  gateway key      {demo.gateway_key}

{examples[0]}
{examples[1]}
{payment}
Press Ctrl-C to stop everything.
"""


def _restore_clock(redis_url: str, path: Path) -> None:
    """Put back the test clock offset an earlier run of this state dir left (its Redis is
    private and keeps nothing, but the database's invoices are dated by that clock)."""
    try:
        offset = int(path.read_text().strip())
    except (OSError, ValueError):
        return
    client = redis_connection.connect_sync(redis_url)
    try:
        client.set(keys.CLOCK_KEY, offset)
    finally:
        client.close()
    if offset:
        print(f"The test clock is {offset / 86_400_000_000:.1f} days ahead, as left.")


def _save_clock(redis_url: str, path: Path) -> None:
    client = redis_connection.connect_sync(redis_url, socket_timeout=2)
    try:
        offset = client.get(keys.CLOCK_KEY)
    except RedisError:
        return
    finally:
        client.close()
    path.write_text(offset.decode() if isinstance(offset, bytes) else "0")


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def run_up(options: UpOptions) -> int:
    for port, flag in ((options.api_port, "--api-port"), (options.gateway_port, "--gateway-port")):
        if _port_taken(options.host, port):
            print(
                f"tollgate up: port {port} on {options.host} is already in use (another "
                f"Tollgate, or another program); choose another with {flag}",
                file=sys.stderr,
            )
            return 2
    state = options.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    database_url = options.database_url or f"sqlite:///{state / 'tollgate.db'}"
    operator_key = _operator_key(state)
    secrets_key = _secrets_key(state)
    sealed.configure(secrets_key)
    processes: list[subprocess.Popen[bytes]] = []
    supervisor = Supervisor()
    own_redis = options.redis_url is None
    redis_url = options.redis_url
    try:
        if redis_url is None:
            find_redis_server()  # installed first when missing, and said so
            port = free_port()
            print(f"Starting redis-server on 127.0.0.1:{port} ...", flush=True)
            processes.append(start_redis(port, state / "redis"))
            redis_url = f"redis://127.0.0.1:{port}/0"
        if own_redis and options.test_mode:
            _restore_clock(redis_url, state / "clock_offset")
        print("Migrating the database ...", flush=True)
        upgrade(database_url)
        asyncio.run(_rebuild_cache(database_url, redis_url))
        env = {
            **os.environ,
            "TOLLGATE_DATABASE_URL": database_url,
            "TOLLGATE_REDIS_URL": redis_url,
            "TOLLGATE_OPERATOR_KEY": operator_key,
            "TOLLGATE_SECRETS_KEY": secrets_key,
            "TOLLGATE_TEST_MODE": "true" if options.test_mode else "false",
            "TOLLGATE_API_HOST": options.host,
            "TOLLGATE_API_PORT": str(options.api_port),
            "TOLLGATE_GATEWAY_HOST": options.host,
            "TOLLGATE_GATEWAY_PORT": str(options.gateway_port),
        }
        logs = state / "logs"
        logs.mkdir(exist_ok=True)
        for module in ("billing_worker", "gateway"):
            with (logs / f"{module}.log").open("ab") as log_file:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", module],
                        env=env,
                        stdout=log_file,
                        stderr=log_file,
                        process_group=0,  # Ctrl-C reaches `up` alone, which stops them in order
                    )
                )
        api_url = f"http://{options.host}:{options.api_port}"
        gateway_url = f"http://{options.host}:{options.gateway_port}"
        asyncio.run(_wait_healthy(f"{api_url}/healthz", processes[-2], "the worker"))
        asyncio.run(_wait_healthy(f"{gateway_url}/healthz", processes[-1], "the gateway"))
        wait_for_port(options.gateway_port, host=options.host)
        demo, fresh = asyncio.run(_demo(state, api_url, operator_key))
        answers = asyncio.run(_answers(demo, gateway_url, fresh=fresh))
        owed = asyncio.run(_balance(demo, api_url, demo.accounts["globex"]))
        print(_banner(demo, answers, owed, gateway_url, api_url, operator_key), flush=True)
        print(f"Logs: {logs}/", flush=True)
        died = supervisor.watch(processes)
        if died is not None:
            print(f"A child process exited ({died.args!r}); stopping.", flush=True)
            return 1
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop
        print("\nStopping ...", flush=True)
        if own_redis and options.test_mode and redis_url is not None:
            _save_clock(redis_url, state / "clock_offset")
        terminate(processes, in_order=True)
