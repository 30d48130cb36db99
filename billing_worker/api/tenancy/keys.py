"""A tenant's own keys: issue, list and revoke (tenant admin key).

Keys are rotated by issuing a new one, moving the application to it, then revoking the
old one. A revoked gateway key stops working on every gateway as soon as the revocation
is published (the same outbox path as every other change); a tenant cannot revoke its
last admin key, which would lock it out of its own account.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from msgspec import Struct

from billing_worker.api.http.appkeys import CLOCK, OUTBOX_WAKE, SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, decode, respond
from billing_worker.api.http.schemas import Body
from billing_worker.db.models import ApiKey
from billing_worker.services import keys
from shared.credentials import KeyKind


class KeyCreate(Body):
    kind: Literal["admin", "gateway"]


class KeyOut(Struct, kw_only=True):
    id: str
    kind: str
    created_at: datetime
    revoked_at: datetime | None


class KeyIssued(KeyOut, kw_only=True):
    #: The whole key, shown this once: only a hash of its secret is kept.
    key: str


class KeyList(Struct, kw_only=True):
    data: list[KeyOut]


def key_view(key: ApiKey) -> KeyOut:
    return KeyOut(id=key.id, kind=key.kind, created_at=key.created_at, revoked_at=key.revoked_at)


@router.route(
    "POST",
    "/v1/tenant/keys",
    summary="Issue a new admin or gateway key (the whole key is shown only in this answer)",
    role=Role.TENANT,
    request=KeyCreate,
    response=KeyIssued,
    status=201,
)
async def create_key(request: web.Request) -> web.Response:
    body = await decode(request, KeyCreate)
    now = request.app[CLOCK].now()
    async with request.app[SESSIONS]() as session, session.begin():
        key, issued = keys.add_key(session, tenant_of(request), KeyKind(body.kind), now)
    request.app[OUTBOX_WAKE].set()
    view = key_view(key)
    return respond(
        KeyIssued(
            id=view.id,
            kind=view.kind,
            created_at=view.created_at,
            revoked_at=None,
            key=issued.token,
        ),
        201,
    )


@router.route(
    "GET",
    "/v1/tenant/keys",
    summary="List the tenant's keys, revoked ones included (never their secrets)",
    role=Role.TENANT,
    response=KeyList,
)
async def list_keys(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        found = await keys.keys_of(session, tenant_of(request))
        return respond(KeyList(data=[key_view(key) for key in found]))


@router.route(
    "DELETE",
    "/v1/tenant/keys/{key_id}",
    summary="Revoke a key: it stops working at once, on the API and on every gateway",
    role=Role.TENANT,
    response=KeyOut,
    errors=(404, 409),
)
async def revoke_key(request: web.Request) -> web.Response:
    now = request.app[CLOCK].now()
    async with request.app[SESSIONS]() as session, session.begin():
        key = await keys.revoke_key(session, tenant_of(request), request.match_info["key_id"], now)
        view = key_view(key)
    request.app[OUTBOX_WAKE].set()
    return respond(view)
