"""The real stack, in this process: the worker (API and jobs) and a gateway, over HTTP."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from billing_worker.api.app import create_app as create_worker_app
from billing_worker.settings import WorkerSettings
from gateway.app import create_app as create_gateway_app
from gateway.settings import GatewaySettings
from tollgate.redis_server import free_port


@dataclass(frozen=True, slots=True)
class Endpoints:
    api: str
    gateway: str
    operator_key: str


@contextlib.asynccontextmanager
async def running_stack(database_url: str, redis_url: str) -> AsyncIterator[Endpoints]:
    """Both services in test mode on free local ports; the database must be migrated."""
    operator_key = "tgop_" + secrets.token_urlsafe(24)
    api_port, gateway_port = free_port(), free_port()
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
        web.AppRunner(create_gateway_app(gateway), access_log=None),
    ]
    try:
        for runner, port in zip(runners, (api_port, gateway_port), strict=True):
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
        yield Endpoints(
            api=f"http://127.0.0.1:{api_port}",
            gateway=f"http://127.0.0.1:{gateway_port}",
            operator_key=operator_key,
        )
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
