"""Who is calling: the operator (bootstrap key from settings) or a tenant's admin key, and
the request's id; what the request changes is theirs in the audit log (``db.audit``)."""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from billing_worker.api.http.appkeys import REQUEST_ID, SESSIONS, SETTINGS
from billing_worker.api.http.console_sessions import (
    COOKIE,
    CSRF_HEADER,
    SAFE_METHODS,
    csrf_ok,
    session_of,
)
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role
from billing_worker.db.audit import Actor, ActorKind, acting_as
from billing_worker.db.models import ApiKey
from billing_worker.services.credentials import verified_key
from billing_worker.services.errors import Forbidden, Unauthorized
from shared.credentials import KeyKind, bearer_token

TENANT = web.RequestKey("tenant_id", str)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def tenant_of(request: web.Request) -> str:
    try:
        return request[TENANT]
    except KeyError:
        raise Forbidden("this endpoint needs a tenant admin key") from None


async def _key_for(request: web.Request, token: str) -> ApiKey:
    async with request.app[SESSIONS]() as session:
        key = await verified_key(session, token)
    if key is None:
        raise Unauthorized()
    if key.kind != KeyKind.ADMIN:
        raise Forbidden("gateway keys only work on the gateway; use the tenant's admin key")
    return key


@web.middleware
async def auth_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    role, request_id = router.role_of(request), request[REQUEST_ID]
    if role is Role.PUBLIC:
        with acting_as(Actor(ActorKind.ANONYMOUS, request_id=request_id)):
            return await handler(request)
    token = bearer_token(request.headers.get("Authorization"))
    if token is None and COOKIE in request.cookies and "Authorization" not in request.headers:
        return await _as_console(request, handler, role)
    if token is None:
        raise Unauthorized("send 'Authorization: Bearer <key>'")
    operator = request.app[SETTINGS].operator_key.reveal().encode()
    if hmac.compare_digest(token.encode(), operator):
        if role in (Role.OPERATOR, Role.ANY):
            with acting_as(Actor(ActorKind.OPERATOR, request_id=request_id)):
                return await handler(request)
        raise Forbidden("the operator key manages tenants; use the tenant's admin key here")
    key = await _key_for(request, token)
    if role is Role.OPERATOR:
        raise Forbidden("only the operator key may do this")
    request[TENANT] = key.tenant_id
    with acting_as(Actor(ActorKind.ADMIN_KEY, key.id, request_id)):
        return await handler(request)


async def _as_console(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    role: Role,
) -> web.StreamResponse:
    """A call from the console's page: its session cookie stands for the key that signed in,
    and anything but a read needs the session's CSRF token as well."""
    async with request.app[SESSIONS]() as session:
        # sessions last in real time: a test clock's jump does not end them
        found = await session_of(session, request, datetime.now(UTC))
    if found is None:
        raise Unauthorized("the console session has ended: sign in again")
    if request.method not in SAFE_METHODS and not csrf_ok(found, request.headers.get(CSRF_HEADER)):
        raise Forbidden(f"a change from the console needs its {CSRF_HEADER} header")
    request_id = request[REQUEST_ID]
    if found.key_id is None:  # the operator, acting on the tenant picked
        actor = Actor(ActorKind.OPERATOR, request_id=request_id)
        if role is Role.OPERATOR or (role is Role.ANY and found.tenant_id is None):
            with acting_as(actor):
                return await handler(request)
    else:
        actor = Actor(ActorKind.ADMIN_KEY, found.key_id, request_id)
        if role is Role.OPERATOR:
            raise Forbidden("only the operator key may do this")
    if found.tenant_id is None:
        raise Forbidden("pick a tenant in the console first")
    request[TENANT] = found.tenant_id
    with acting_as(actor):
        return await handler(request)


@web.middleware
async def request_id_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every request has an id: the caller's ``X-Request-Id`` when it is a plain token,
    else a new one. It is echoed on the response, put on the audit log's rows and on the
    log line of an unexpected error."""
    given = request.headers.get("X-Request-Id", "")
    request[REQUEST_ID] = given if _REQUEST_ID.fullmatch(given) else secrets.token_hex(8)
    response = await handler(request)
    response.headers["X-Request-Id"] = request[REQUEST_ID]
    return response
