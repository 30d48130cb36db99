"""A real HAProxy (Debian's haproxy 2.6) running the shipped ``deploy/haproxy/haproxy.cfg``
and ``tollgate.lua`` as they are, configured by its environment: the same contract as
nginx's — the upstream sees exactly the allowed requests, with the identity Tollgate vouches
for; a degraded account's POST is refused; with the gateway down, nothing gets through."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.integration.conftest import Stack
from tests.integration.gateway.test_nginx import (
    Scene,
    Upstream,
    people,
    serve,
    settle,
    test_upstream_sees_exactly_the_allowed_requests,
    test_with_the_gateway_stopped_the_proxy_refuses,
    upstream,
)
from tollgate.redis_server import free_port

__all__ = [
    "test_upstream_sees_exactly_the_allowed_requests",
    "test_with_the_gateway_stopped_the_proxy_refuses",
    "upstream",
]

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "haproxy"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


@pytest.fixture
async def scene(
    stack: Stack, upstream: tuple[Upstream, str], redis_client: aioredis.Redis, tmp_path: Path
) -> AsyncIterator[Scene]:
    acme, tokens = await people(stack, redis_client)
    state, upstream_url = upstream
    port = free_port()
    env = {
        **os.environ,
        "TOLLGATE_LISTEN": f"127.0.0.1:{port}",
        "TOLLGATE_GATEWAY": f"http://127.0.0.1:{stack.gateway.port}",
        "TOLLGATE_TENANT": acme.id,
        "APP_UPSTREAM": upstream_url.removeprefix("http://"),
        "TOLLGATE_LUA": str(DEPLOY / "tollgate.lua"),
    }
    command = [HAPROXY, "-db", "-f", str(DEPLOY / "haproxy.cfg")]
    haproxy = serve(command, port, tmp_path / "haproxy.log", env)
    url = next(haproxy)
    yield await settle(Scene(proxy=url, upstream=state, tokens=tokens, stack=stack))
    next(haproxy, None)
