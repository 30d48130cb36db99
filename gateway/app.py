"""The gateway application: ``POST /v1/authorize``, health and readiness."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web

from gateway.appkeys import CLOCK, SETTINGS, STORE
from gateway.cache import NearCache
from gateway.decision import Decision, decide
from gateway.settings import GatewaySettings
from gateway.store import EntitlementStore, StoreUnavailable
from shared.clock import RedisTestClock, SystemClock
from shared.credentials import KeyKind, bearer_token, secret_matches, split_token
from shared.problem import problem_response

MAX_BODY = 8 * 1024
_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="tollgate"'}


def create_app(settings: GatewaySettings) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_redis)
    app.router.add_post("/v1/authorize", authorize)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def _redis(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client = aioredis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
    )
    subscriber = aioredis.Redis.from_url(settings.redis_url, health_check_interval=10)
    cache = NearCache(ttl=settings.near_cache_ttl, max_size=settings.near_cache_size)
    store = EntitlementStore(client, cache, subscriber=subscriber)
    app[STORE] = store
    stop = asyncio.Event()
    follower = asyncio.create_task(store.follow_invalidations(stop), name="invalidation-follower")
    test_clock = RedisTestClock(subscriber) if settings.test_mode else None
    if test_clock is not None:
        await test_clock.start()
    app[CLOCK] = test_clock or SystemClock()
    yield
    if test_clock is not None:
        await test_clock.stop()
    stop.set()
    await follower
    await client.aclose()
    await subscriber.aclose()


def _json(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


def _invalid(field: str, reason: str) -> web.Response:
    return problem_response(
        422,
        "invalid_request",
        "The request has invalid fields.",
        f"{field}: {reason}",
        errors=[{"field": field, "reason": reason}],
    )


def _unavailable() -> web.Response:
    return problem_response(
        503,
        "unavailable",
        "Entitlements are unreachable",
        "The entitlement store did not answer in time; the request was not authorized.",
        headers={"Retry-After": "1"},
    )


async def _tenant_of(request: web.Request, store: EntitlementStore) -> str | None:
    """The tenant whose gateway key authorizes this request, or None."""
    token = bearer_token(request.headers.get("Authorization"))
    parts = split_token(token) if token else None
    if parts is None:
        return None
    key_id, secret = parts
    entry = await store.api_key(key_id)
    if entry is None or entry.revoked or entry.kind is not KeyKind.GATEWAY:
        return None
    return entry.tenant_id if secret_matches(secret, entry.secret_hash) else None


def _decision_body(user_id: str, decision: Decision) -> dict[str, Any]:
    record = decision.record
    valid_until = None
    if record is not None and record.valid_until is not None:
        valid_until = datetime.fromtimestamp(record.valid_until, UTC).isoformat()
    return {
        "allow": decision.allow,
        "user": user_id,
        "account": record.account_id if record else None,
        "standing": decision.standing.value if decision.standing else None,
        "reason": decision.reason,
        "plan": record.plan if record else None,
        "features": list(record.features) if record else [],
        "valid_until": valid_until,
    }


async def authorize(request: web.Request) -> web.Response:
    """May this end user log in (or use this feature) right now?"""
    store = request.app[STORE]
    try:
        tenant_id = await _tenant_of(request, store)
        if tenant_id is None:
            return problem_response(
                401,
                "unauthorized",
                "Missing or invalid gateway key",
                "send 'Authorization: Bearer <gateway key>'",
                headers=_UNAUTHORIZED_HEADERS,
            )
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return problem_response(400, "malformed_body", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return _invalid("body", "must be a JSON object")
        user_id = body.get("user")
        if not isinstance(user_id, str) or not 0 < len(user_id) <= 200:
            return _invalid("user", "must be a string of 1 to 200 characters")
        feature = body.get("feature")
        if feature is not None and not isinstance(feature, str):
            return _invalid("feature", "must be a string")
        user = await store.user(tenant_id, user_id)
        record = await store.record(tenant_id, user.account_id) if user else None
    except StoreUnavailable:
        return _unavailable()
    decision = decide(user, record, request.app[CLOCK].timestamp(), feature)
    return _json(_decision_body(user_id, decision))


async def healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    if await request.app[STORE].ping():
        return _json({"status": "ready"})
    return problem_response(503, "not_ready", "Redis is unreachable")
