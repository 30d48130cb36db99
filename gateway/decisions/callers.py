"""Which tenant is calling: its gateway key, checked against the published key entry."""

from __future__ import annotations

from aiohttp import web

from gateway.appkeys import GATE
from gateway.decisions.verified import VerifiedSecrets
from gateway.responses import json_response, unauthorized, unavailable
from gateway.view.store import Reader, StoreUnavailable, read_key
from shared.credentials import KeyKind, bearer_token, split_token


async def tenant_for(
    reader: Reader, verified: VerifiedSecrets, authorization: str | None
) -> str | None:
    """The tenant of a valid, unrevoked gateway key sent as ``Bearer``, or None."""
    token = bearer_token(authorization)
    return await key_tenant(reader, verified, token) if token else None


async def key_tenant(reader: Reader, verified: VerifiedSecrets, token: str) -> str | None:
    """The tenant of a valid, unrevoked gateway key, or None."""
    parts = split_token(token)
    if parts is None:
        return None
    key_id, secret = parts
    entry = await read_key(reader, key_id)
    if entry is None or entry.revoked or entry.kind is not KeyKind.GATEWAY:
        return None
    return entry.tenant_id if verified.matches(secret, entry) else None


async def whoami(request: web.Request) -> web.Response:
    """``GET /v1/key``: the tenant a gateway key belongs to (a client checks answers by it)."""
    gate = request.app[GATE]
    try:
        tenant_id = await tenant_for(
            gate.store.live, gate.verified, request.headers.get("Authorization")
        )
    except StoreUnavailable:
        return unavailable()
    if tenant_id is None:
        return unauthorized()
    return json_response({"tenant": tenant_id, "kind": KeyKind.GATEWAY.value})
