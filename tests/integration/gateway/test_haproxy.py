"""A real HAProxy (Debian's haproxy 2.6) running the shipped ``deploy/haproxy/haproxy.cfg``
and ``tollgate.lua`` as they are, configured by its environment: the same contract as
nginx's — the upstream sees exactly the allowed requests, with the identity Tollgate vouches
for; a degraded account's POST is refused; with the gateway down, nothing gets through."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.integration.conftest import Stack
from tests.integration.gateway.test_nginx import (
    Scene,
    Upstream,
    people,
    settle,
    test_upstream_sees_exactly_the_allowed_requests,
    test_with_the_gateway_stopped_the_proxy_refuses,
    upstream,
)
from tollgate.redis_server import free_port, wait_for_port

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
    haproxy = _haproxy(env, port, tmp_path)
    url = next(haproxy)
    yield await settle(Scene(proxy=url, upstream=state, tokens=tokens, stack=stack))
    next(haproxy, None)


def _haproxy(env: dict[str, str], port: int, tmp: Path) -> Iterator[str]:
    command = [HAPROXY, "-db", "-f", str(DEPLOY / "haproxy.cfg")]
    with (tmp / "haproxy.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    try:
        wait_for_port(port, timeout=10)
    except TimeoutError:
        process.kill()
        process.wait()
        raise AssertionError((tmp / "haproxy.log").read_text()) from None
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)
