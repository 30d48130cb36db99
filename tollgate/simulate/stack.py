"""The real stack, in this process: the worker (API and jobs) and a gateway, over HTTP."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from billing_worker.settings import WorkerSettings
from billing_worker.worker import create_app as create_worker_app
from gateway.app import create_app as create_gateway_app
from gateway.server import GatewayRunner
from gateway.settings import GatewaySettings


@dataclass(frozen=True, slots=True)
class Endpoints:
    api: str
    gateway: str
    operator_key: str


@contextlib.asynccontextmanager
async def running_stack(database_url: str, redis_url: str) -> AsyncIterator[Endpoints]:
    """Both services in test mode on free local ports; the database must be migrated."""
    operator_key = "tgop_" + secrets.token_urlsafe(24)
    worker = WorkerSettings.from_env(
        {
            "TOLLGATE_DATABASE_URL": database_url,
            "TOLLGATE_REDIS_URL": redis_url,
            "TOLLGATE_OPERATOR_KEY": operator_key,
            "TOLLGATE_TEST_MODE": "true",
            "TOLLGATE_SCHEDULER_INTERVAL": "0.5",
        }
    )
    gateway = GatewaySettings.from_env(
        {"TOLLGATE_REDIS_URL": redis_url, "TOLLGATE_TEST_MODE": "true"}
    )
    runners = [
        web.AppRunner(create_worker_app(worker), access_log=None),
        GatewayRunner(create_gateway_app(gateway), access_log=None),
    ]
    try:
        urls = []
        for runner in runners:
            await runner.setup()
            # Port 0: the kernel picks a free port at bind time, so nothing can take it first.
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            host, port = runner.addresses[0][:2]
            urls.append(f"http://{host}:{port}")
        yield Endpoints(api=urls[0], gateway=urls[1], operator_key=operator_key)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
