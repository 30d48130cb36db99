"""The baseline servers the benchmark compares Tollgate with.

``python -m tollgate.bench.baselines KIND --port N [--url URL]``:
- ``hello``: aiohttp + uvloop returning a small JSON body (the framework floor);
- ``lowlevel``: the same answer from aiohttp's low-level server (``web.Server``, no
  application, no router): the floor of the layer Tollgate's decision endpoints run on;
- ``redis``: the same handler doing one Redis GET per request;
- ``sql``: what a team without Tollgate would write -- one SQL query per login, joining
  the user to its account's standing (SQLite through aiosqlite, PostgreSQL through asyncpg).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from shared import redis_connection
from shared.redis_connection import RedisClient
from shared.runtime import install_uvloop, serve

Handler = Callable[[web.Request], Awaitable[web.Response]]
SQL = (
    "SELECT u.status, a.standing, a.valid_until FROM users u "
    "JOIN accounts a ON a.id = u.account_id WHERE u.tenant_id = {t} AND u.external_id = {u}"
)


def _json(payload: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(payload), content_type="application/json")


def hello_app() -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return _json({"allow": True, "reason": "hello"})

    app = web.Application()
    app.router.add_post("/v1/authorize", handle)
    return app


async def serve_lowlevel(port: int) -> None:
    """The ``hello`` handler on ``web.Server`` directly, until SIGTERM."""

    async def handle(request: web.BaseRequest) -> web.Response:
        await request.read()
        return _json({"allow": True, "reason": "hello"})

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.ServerRunner(web.Server(handle))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def redis_app(url: str) -> web.Application:
    app = web.Application()
    client_key = web.AppKey[RedisClient]("client")

    async def client_ctx(app: web.Application) -> AsyncIterator[None]:
        app[client_key] = redis_connection.connect(url)
        yield
        await app[client_key].aclose()

    async def handle(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        value = await request.app[client_key].get(f"bench:{body['user']}")
        return _json({"allow": value is not None, "reason": "redis"})

    app.cleanup_ctx.append(client_ctx)
    app.router.add_post("/v1/authorize", handle)
    return app


def sql_app(url: str, tenant_id: str) -> web.Application:
    app = web.Application()
    query_key = web.AppKey[Callable[[str], Awaitable[Any]]]("query")

    async def pg_ctx(app: web.Application) -> AsyncIterator[None]:
        import asyncpg

        pool = await asyncpg.create_pool(url, min_size=4, max_size=8)
        sql = SQL.format(t="$1", u="$2")

        async def query(user: str) -> Any:
            async with pool.acquire() as connection:
                return await connection.fetchrow(sql, tenant_id, user)

        app[query_key] = query
        yield
        await pool.close()

    async def sqlite_ctx(app: web.Application) -> AsyncIterator[None]:
        import aiosqlite

        connection = await aiosqlite.connect(url.removeprefix("sqlite:///"))
        sql = SQL.format(t="?", u="?")

        async def query(user: str) -> Any:
            async with connection.execute(sql, (tenant_id, user)) as cursor:
                return await cursor.fetchone()

        app[query_key] = query
        yield
        await connection.close()

    async def handle(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        row = await request.app[query_key](body["user"])
        allow = row is not None and row[0] == "active" and row[1] in ("active", "grace")
        return _json({"allow": allow, "reason": "sql"})

    app.cleanup_ctx.append(pg_ctx if url.startswith("postgresql") else sqlite_ctx)
    app.router.add_post("/v1/authorize", handle)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["hello", "lowlevel", "redis", "sql"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--url", default="")
    parser.add_argument("--tenant", default="")
    args = parser.parse_args()
    install_uvloop()
    if args.kind == "lowlevel":
        asyncio.run(serve_lowlevel(args.port))
        return
    if args.kind == "hello":
        app = hello_app()
    elif args.kind == "redis":
        app = redis_app(args.url)
    else:
        app = sql_app(args.url, args.tenant)
    asyncio.run(serve(app, "127.0.0.1", args.port))


if __name__ == "__main__":
    main()
