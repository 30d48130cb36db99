"""Who is calling: the operator (bootstrap key from settings) or a tenant's admin key."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from billing_worker.api.http.appkeys import SESSIONS, SETTINGS
from billing_worker.api.http.errors import Forbidden, Unauthorized
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role
from billing_worker.db.models import ApiKey
from shared.credentials import KeyKind, bearer_token, secret_matches, split_token

TENANT = web.RequestKey("tenant_id", str)


def tenant_of(request: web.Request) -> str:
    try:
        return request[TENANT]
    except KeyError:
        raise Forbidden("this endpoint needs a tenant admin key") from None


async def _tenant_for(request: web.Request, token: str) -> str:
    parts = split_token(token)
    if parts is None:
        raise Unauthorized()
    key_id, secret = parts
    async with request.app[SESSIONS]() as session:
        key = await session.get(ApiKey, key_id)
    # Hash the secret even for an unknown id, so timing does not tell ids apart.
    matches = secret_matches(secret, key.secret_hash if key else "0" * 64)
    if key is None or not matches or key.revoked_at is not None:
        raise Unauthorized()
    if key.kind != KeyKind.ADMIN:
        raise Forbidden("gateway keys only work on the gateway; use the tenant's admin key")
    return key.tenant_id


@web.middleware
async def auth_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    role = router.role_of(request)
    if role is Role.PUBLIC:
        return await handler(request)
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise Unauthorized("send 'Authorization: Bearer <key>'")
    operator = request.app[SETTINGS].operator_key.reveal().encode()
    if hmac.compare_digest(token.encode(), operator):
        if role in (Role.OPERATOR, Role.ANY):
            return await handler(request)
        raise Forbidden("the operator key manages tenants; use the tenant's admin key here")
    tenant_id = await _tenant_for(request, token)
    if role is Role.OPERATOR:
        raise Forbidden("only the operator key may do this")
    request[TENANT] = tenant_id
    return await handler(request)
