"""The request rows: the baselines, Tollgate's decision endpoints, logins, nginx in front.

The minimal aiohttp handler is started first and left running: every row measured on one
core is measured in pairs with it (see ``Bench.measure``), so its ratio holds however the
machine's neighbours drift. The rows with two gateway processes run unpinned and are
compared with each other instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from string import Template

import aiohttp

from shared import redis_connection
from tollgate.bench.harness import (
    BASELINE,
    WARM,
    Bench,
    Reference,
    env,
    python,
    reset_postgres,
    seed_tenant,
)
from tollgate.bench.wrk import Traffic
from tollgate.redis_server import free_port
from tollgate.seed import TenantKeys

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "tollgate.conf.template"
NGINX_ALONE = "nginx proxying to an upstream returning 200"
NGINX_AUTH = "nginx + Tollgate auth_request (shipped config, keepalive), same upstream"


def throughput(bench: Bench, redis_url: str, database_url: str, keys: TenantKeys) -> None:
    sample = keys.users["active"][:1000]
    consumers = keys.users["consumer:active"][:1000]
    authorize = Traffic(
        method="POST",
        path="/v1/authorize",
        bodies=tuple(json.dumps({"user": user}) for user in sample),
        headers={"Authorization": f"Bearer {keys.gateway_key}", "Content-Type": "application/json"},
    )

    print("baselines", flush=True)
    hello_port = free_port()
    hello = _baseline(bench, "hello", hello_port)
    minimal = Reference(f"http://127.0.0.1:{hello_port}", authorize)
    bench.measure(BASELINE, minimal.url, authorize)
    lowlevel_port = free_port()
    lowlevel = _baseline(bench, "lowlevel", lowlevel_port)
    bench.measure(
        "aiohttp low-level server (web.Server), same handler",
        f"http://127.0.0.1:{lowlevel_port}",
        authorize,
        against=minimal,
    )
    bench.stop(lowlevel)
    floor = free_port()
    nginx = _nginx(
        bench, f'server {{ listen 127.0.0.1:{floor}; location / {{ return 200 "ok"; }} }}', floor
    )
    get = Traffic(method="GET", path="/", headers={})
    bench.measure(
        "nginx returning 200 (HTTP floor)", f"http://127.0.0.1:{floor}", get, against=minimal
    )
    bench.stop(nginx)
    sqlite = ["--url", database_url, "--tenant", keys.id]
    for kind, name, extra in (
        ("redis", "aiohttp + one Redis GET", ["--url", redis_url]),
        ("sql", "DIY: one SQL query per login (SQLite)", sqlite),
    ):
        port = free_port()
        process = _baseline(bench, kind, port, *extra)
        if kind == "redis":
            asyncio.run(_mark_users(redis_url, sample))
        bench.measure(name, f"http://127.0.0.1:{port}", authorize, against=minimal)
        bench.stop(process)
    if bench.postgres_url:
        _postgres_baseline(bench, redis_url, authorize, minimal)
    else:
        bench.results.notes.append("PostgreSQL rows skipped: no --postgres-url given")

    print("tollgate", flush=True)
    tokens: list[str] = []
    for label, ttl in ((WARM, "5"), ("near-cache off: Redis path", "0")):
        port = free_port()
        gateway_env = env(REDIS_URL=redis_url, GATEWAY_PORT=str(port), NEAR_CACHE_TTL=ttl)
        gateway = bench.start(python("gateway"), gateway_env, port, f"gateway-{ttl}")
        url = f"http://127.0.0.1:{port}"
        if not tokens:
            tokens = asyncio.run(_sessions(url, keys.gateway_key, consumers[:500]))
        cookies = tuple(f"tollgate_session={token}" for token in tokens)
        proxy = Traffic(
            method="GET",
            path=f"/v1/auth?tenant={keys.id}",  # bound to its tenant, as nginx's config is
            headers={"X-Original-Method": "GET"},
            varied_header="Cookie",
            header_values=cookies,
        )
        saturated = bench.measure(
            f"Tollgate /v1/authorize, {label}", url, authorize, against=minimal, server=gateway
        )
        if ttl == "5":
            half = authorize.paced(bench.profile.connections, saturated.rps / 2)
            bench.measure(f"Tollgate /v1/authorize, {label}, paced to half load", url, half)
        bench.measure(f"Tollgate /v1/auth, {label}", url, proxy, against=minimal, server=gateway)
        if ttl == "5":
            _behind_nginx(bench, url, keys.id, cookies, minimal)
        bench.stop(gateway)

    # After the proxy rows: logins evict the oldest sessions (3 seats), the ones they used.
    port = free_port()
    gateway = bench.start(
        python("gateway"), env(REDIS_URL=redis_url, GATEWAY_PORT=str(port)), port, "logins"
    )
    logins = Traffic(
        method="POST",
        path="/v1/sessions",
        headers=authorize.headers,
        bodies=tuple(json.dumps({"user": u}) for u in consumers),
    )
    bench.measure(
        "Tollgate /v1/sessions login with seat check",
        f"http://127.0.0.1:{port}",
        logins,
        against=minimal,
        server=gateway,
    )
    bench.stop(gateway)
    bench.stop(hello)

    # Several processes cannot be pinned to the one server core; these two rows run unpinned.
    saved, bench.server_core = bench.server_core, None
    for processes in ("1", "2"):
        port = free_port()
        gateway_env = env(REDIS_URL=redis_url, GATEWAY_PORT=str(port), GATEWAY_PROCESSES=processes)
        gateway = bench.start(python("gateway"), gateway_env, port, f"gateway-x{processes}")
        bench.measure(
            f"Tollgate /v1/authorize, {processes} process(es), unpinned",
            f"http://127.0.0.1:{port}",
            authorize,
        )
        bench.stop(gateway)
    bench.server_core = saved


def _baseline(bench: Bench, kind: str, port: int, *extra: str) -> subprocess.Popen[bytes]:
    command = python("tollgate.bench.baselines", kind, "--port", str(port), *extra)
    return bench.start(command, os.environ.copy(), port, f"baseline-{kind}")


def _behind_nginx(
    bench: Bench, gateway: str, tenant_id: str, cookies: tuple[str, ...], minimal: Reference
) -> None:
    """A protected page end to end: nginx asks the gateway, then proxies to the upstream;
    next to the same nginx proxying to the same upstream without asking."""
    upstream, alone, protected = free_port(), free_port(), free_port()
    shipped = Template(TEMPLATE.read_text()).safe_substitute(
        TOLLGATE_LISTEN=f"127.0.0.1:{protected}",
        TOLLGATE_GATEWAY="http://tollgate_gateway",  # the upstream below, kept alive
        TOLLGATE_TENANT=tenant_id,
        APP_UPSTREAM=f"http://127.0.0.1:{upstream}",
    )
    servers = f"""
  upstream tollgate_gateway {{ server {gateway.removeprefix("http://")}; keepalive 32; }}
  server {{ listen 127.0.0.1:{upstream}; location / {{ return 200 "the application"; }} }}
  server {{ listen 127.0.0.1:{alone}; location / {{ proxy_pass http://127.0.0.1:{upstream}; }} }}
  {shipped}"""
    nginx = _nginx(bench, servers, protected)
    page = Traffic(
        method="GET", path="/reports", headers={}, varied_header="Cookie", header_values=cookies
    )
    bench.measure(NGINX_ALONE, f"http://127.0.0.1:{alone}", page, against=minimal)
    bench.measure(NGINX_AUTH, f"http://127.0.0.1:{protected}", page, against=minimal)
    bench.stop(nginx)


def _nginx(bench: Bench, servers: str, port: int) -> subprocess.Popen[bytes]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    root = bench.workdir / f"nginx-{port}"
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "nginx.conf").write_text(
        f"""daemon off; worker_processes 1; pid {root}/nginx.pid; error_log {root}/error.log;
events {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {root}/body; proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi; uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;
  {servers}
}}
"""
    )
    command = [nginx, "-c", str(root / "nginx.conf"), "-p", str(root)]
    return bench.start(command, os.environ.copy(), port, f"nginx-{port}")


async def _sessions(gateway: str, key: str, users: list[str]) -> list[str]:
    tokens = []
    async with aiohttp.ClientSession() as http:
        for user in users:
            headers = {"Authorization": f"Bearer {key}"}
            async with http.post(
                f"{gateway}/v1/sessions", json={"user": user}, headers=headers
            ) as response:
                if response.status == 201:
                    tokens.append((await response.json())["token"])
    return tokens


async def _mark_users(redis_url: str, users: list[str]) -> None:
    client = redis_connection.connect(redis_url)
    try:
        await client.mset({f"bench:{user}": "1" for user in users})
    finally:
        await client.aclose()


def _postgres_baseline(
    bench: Bench, redis_url: str, authorize: Traffic, minimal: Reference
) -> None:
    assert bench.postgres_url is not None
    asyncio.run(reset_postgres(bench.postgres_url))
    scratch = redis_url.rsplit("/", 1)[0] + "/1"
    keys = asyncio.run(seed_tenant(bench.postgres_url, scratch, bench.profile.users))
    bodies = tuple(json.dumps({"user": user}) for user in keys.users["active"][:1000])
    port = free_port()
    process = bench.start(
        python(
            "tollgate.bench.baselines",
            "sql",
            "--port",
            str(port),
            "--url",
            bench.postgres_url,
            "--tenant",
            keys.id,
        ),
        os.environ.copy(),
        port,
        "baseline-sql-pg",
    )
    traffic = Traffic(method="POST", path="/v1/authorize", headers=authorize.headers, bodies=bodies)
    bench.measure(
        "DIY: one SQL query per login (PostgreSQL)",
        f"http://127.0.0.1:{port}",
        traffic,
        against=minimal,
    )
    bench.stop(process)
