"""A real nginx with ``auth_request`` in front of a small upstream, using the shipped
``deploy/nginx/tollgate.conf.template``: the upstream sees exactly the allowed requests,
with the identity Tollgate vouches for."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.conftest import Stack, Tenant
from tests.integration.gateway.test_proxy_contract import degrade, suspend
from tests.integration.gateway.test_sessions import login, wait_published
from tollgate.redis_server import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "deploy" / "nginx" / "tollgate.conf.template"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@dataclass
class Upstream:
    seen: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(
            {
                "method": request.method,
                "path": request.path,
                # header names as proxies send them: HAProxy lowercases them
                **{
                    k.title(): v
                    for k, v in request.headers.items()
                    if k.lower().startswith("x-tollgate-")
                },
            }
        )
        return web.Response(text="the application")


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    app_state = Upstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", app_state.handle)
    server = TestServer(app)
    await server.start_server()
    yield app_state, f"http://127.0.0.1:{server.port}"
    await server.close()


def _nginx(tmp: Path, server_block: str) -> Iterator[str]:
    port = free_port()
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"""
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    {server_block.replace("${TOLLGATE_LISTEN}", f"127.0.0.1:{port}")}
}}
"""
    )
    yield from serve([NGINX, "-c", str(conf), "-p", str(tmp)], port, tmp / "stderr.log")


def serve(
    command: list[str], port: int, log: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run a proxy until resumed: yields its URL once it listens on ``port``; a proxy that
    never does fails the test with what it logged."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=out)
    try:
        wait_for_port(port, timeout=10)
    except TimeoutError:
        process.kill()
        process.wait()
        raise AssertionError(log.read_text()) from None
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


@dataclass
class Scene:
    proxy: str
    upstream: Upstream
    tokens: dict[str, str]
    stack: Stack


async def people(stack: Stack, redis_client: aioredis.Redis) -> tuple[Tenant, dict[str, str]]:
    """Acme's active, degraded and suspended customers and another tenant's, each logged in;
    returns Acme and the session token of each user."""
    acme, other = await stack.new_tenant("Acme"), await stack.new_tenant("Other")
    accounts = {u: await stack.customer(acme, u) for u in ("active", "degraded", "suspended")}
    await stack.customer(other, "outsider")
    for tenant, user in [(acme, u) for u in accounts] + [(other, "outsider")]:
        await wait_published(stack, tenant, user)
    tokens = {u: (await (await login(stack, acme, u)).json())["token"] for u in accounts}
    tokens["outsider"] = (await (await login(stack, other, "outsider")).json())["token"]
    await degrade(redis_client, acme.id, accounts["degraded"])
    await suspend(redis_client, acme.id, accounts["suspended"])
    return acme, tokens


async def settle(scene: Scene) -> Scene:
    """Until the proxy sees the suspension; then no request has reached the upstream."""

    async def settled() -> bool:
        status, _ = await fetch(scene, "GET", "/probe", "suspended")
        return status == 403

    await scene.stack.eventually(settled)
    scene.upstream.seen.clear()
    return scene


@pytest.fixture(params=["address", "kept-alive upstream"])
async def scene(
    request: pytest.FixtureRequest,
    stack: Stack,
    upstream: tuple[Upstream, str],
    redis_client: aioredis.Redis,
    tmp_path: Path,
) -> AsyncIterator[Scene]:
    """nginx with the shipped block, given the gateway's address, or (as compose does) an
    upstream block whose connections stay open from one check to the next."""
    acme, tokens = await people(stack, redis_client)
    state, upstream_url = upstream
    gateway, kept_alive = f"http://127.0.0.1:{stack.gateway.port}", ""
    if request.param == "kept-alive upstream":
        kept_alive = f"upstream gateways {{ server 127.0.0.1:{stack.gateway.port}; keepalive 4; }}"
        gateway = "http://gateways"
    block = Template(TEMPLATE.read_text()).safe_substitute(
        TOLLGATE_GATEWAY=gateway,
        TOLLGATE_TENANT=acme.id,
        APP_UPSTREAM=upstream_url,
    )
    nginx = _nginx(tmp_path / "nginx", kept_alive + "\n" + block)
    url = next(nginx)
    yield await settle(Scene(proxy=url, upstream=state, tokens=tokens, stack=stack))
    next(nginx, None)


async def fetch(scene: Scene, method: str, path: str, who: str | None) -> tuple[int, str]:
    headers = {"X-Tollgate-User": "spoofed"}
    forged = "tgs_ten_1.acc_1.abc.nope"
    cookies = {"tollgate_session": scene.tokens.get(who, forged)} if who else {}
    async with aiohttp.ClientSession(cookies=cookies) as http:
        async with http.request(method, scene.proxy + path, headers=headers) as response:
            return response.status, await response.text()


@pytest.mark.parametrize(
    ("method", "who", "status"),
    [
        ("GET", "active", 200),
        ("POST", "active", 200),
        ("GET", "degraded", 200),
        ("POST", "degraded", 403),  # read-only: safe methods only
        ("GET", "suspended", 403),
        ("GET", "outsider", 401),  # another tenant's valid session
        ("GET", "forged", 401),  # unknown session
        ("GET", None, 401),  # no session at all
    ],
)
async def test_upstream_sees_exactly_the_allowed_requests(
    scene: Scene, method: str, who: str | None, status: int
) -> None:
    got, body = await fetch(scene, method, "/reports/7", who)
    assert got == status
    if status == 200:
        assert body == "the application"
        assert len(scene.upstream.seen) == 1
        seen = scene.upstream.seen[0]
        assert (seen["method"], seen["path"]) == (method, "/reports/7")
        assert seen["X-Tollgate-User"] == who  # the client's spoofed header was replaced
        assert seen["X-Tollgate-Standing"] == ("degraded" if who == "degraded" else "grace")
        assert seen["X-Tollgate-Features"] == "reports"
    else:
        assert scene.upstream.seen == []


async def test_with_the_gateway_stopped_the_proxy_refuses(scene: Scene) -> None:
    assert (await fetch(scene, "GET", "/", "active"))[0] == 200
    scene.upstream.seen.clear()
    await scene.stack.gateway.close()
    status, _ = await fetch(scene, "GET", "/", "active")
    assert status >= 500  # the proxy's own refusal: never an allow
    assert scene.upstream.seen == []
