"""The gateway application: the hot path. Reads Redis and its own memory, never SQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from gateway.appkeys import (
    CLOCK,
    GATE,
    METRICS,
    SESSIONS,
    SETTINGS,
    STORE,
    VERIFIED,
    WRITEBACK,
)
from gateway.decisions.answers import Answers
from gateway.decisions.authorize import authorize
from gateway.decisions.callers import whoami
from gateway.decisions.gate import AuthorizeAnswers, Gate, ProxyPasses
from gateway.decisions.proxy import auth, envoy
from gateway.decisions.session_api import create_session, end_session, refresh_session
from gateway.decisions.trusted import TrustedProxies
from gateway.decisions.verified import VerifiedSecrets
from gateway.logins.sessions import SessionStore, StoppedUsers
from gateway.logins.writeback import WriteBack
from gateway.metrics import GatewayMetrics
from gateway.openapi import gateway_openapi
from gateway.responses import MAX_BODY, json_response
from gateway.settings import GatewaySettings
from gateway.view.cache import NearCache
from gateway.view.store import EntitlementStore, connect
from shared import redis_connection
from shared.clock import RedisTestClock, SystemClock
from shared.problem import problem_response
from shared.runtime import package_version


def create_app(settings: GatewaySettings) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    app[VERIFIED] = VerifiedSecrets()
    app[METRICS] = GatewayMetrics(CollectorRegistry(auto_describe=True))
    app.cleanup_ctx.append(_redis)
    app.router.add_post("/v1/authorize", authorize)
    app.router.add_post("/v1/sessions", create_session)
    app.router.add_post("/v1/sessions/{session_id}/refresh", refresh_session)
    app.router.add_delete("/v1/sessions/{session_id}", end_session)
    app.router.add_get("/v1/auth", auth)  # also answers HEAD
    app.router.add_get("/v1/key", whoami)
    app.router.add_route("*", settings.envoy_prefix + "{path:(/.*)?}", envoy)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    # Last, so that it only ever sees what no route above took: problem+json, not text.
    app.router.add_route("*", "/{unknown:.*}", unknown_endpoint)
    return app


async def openapi(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    document = gateway_openapi(package_version(), settings.envoy_prefix, str(request.url.origin()))
    return json_response(document)


async def unknown_endpoint(request: web.Request) -> web.Response:
    """A 405 (with ``Allow``) for a known path asked with another method, else a 404."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.canonical != "/{unknown}":
            _match, methods = await resource.resolve(request)
            allowed |= methods
    if allowed:
        return problem_response(
            405, "method_not_allowed", "Method not allowed",
            f"{request.path} answers {', '.join(sorted(allowed))}",
            headers={"Allow": ", ".join(sorted(allowed))},
        )  # fmt: skip
    return problem_response(
        404, "not_found", "No such endpoint",
        "The gateway answers POST /v1/authorize, /v1/sessions, GET /v1/auth, "
        "/healthz, /readyz and /metrics",
    )  # fmt: skip


async def _redis(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client = connect(settings.redis_url, settings.redis_timeout)
    subscriber = redis_connection.connect(settings.redis_url, health_check_interval=10)
    cache = NearCache(ttl=settings.near_cache_ttl, max_size=settings.near_cache_size)
    store = EntitlementStore(client, cache, subscriber=subscriber)
    app[STORE] = store
    app[SESSIONS] = sessions = SessionStore(client)
    store.on_changed.append(StoppedUsers(client, sessions).announced)
    app[WRITEBACK] = writeback = WriteBack(client)
    store.on_rebuilt.append(writeback.forget_seen)  # Redis lost the day's active users
    app[METRICS].watch(store)
    stop = asyncio.Event()
    background = [
        asyncio.create_task(store.follow_invalidations(stop), name="invalidation-follower"),
        asyncio.create_task(writeback.run(stop), name="writeback"),
    ]
    test_clock = RedisTestClock(subscriber) if settings.test_mode else None
    if test_clock is not None:
        await test_clock.start()
    app[CLOCK] = test_clock or SystemClock()
    answers: AuthorizeAnswers = Answers(cache)
    passes: ProxyPasses = Answers(cache)
    app[METRICS].watch_answers(authorize=answers, auth=passes)
    app[GATE] = Gate(
        settings,
        store,
        app[VERIFIED],
        app[METRICS],
        writeback,
        app[CLOCK],
        TrustedProxies(settings),
        answers,
        passes,
    )
    yield
    if test_clock is not None:
        await test_clock.stop()
    stop.set()
    await asyncio.gather(*background, return_exceptions=True)
    await client.aclose()
    await subscriber.aclose()


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    store = request.app[STORE]
    if not await store.ping():
        return problem_response(503, "not_ready", "Redis is unreachable")
    if not await store.view_present():
        return problem_response(
            503, "not_ready", "The entitlement view is missing from Redis",
            "The worker rebuilds it from SQL by itself (or run `tollgate cache rebuild`).",
        )  # fmt: skip
    return json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
