"""An account's live login sessions, read from the Redis view the gateways keep them in, and
ending one from the management API (a support agent signing a stolen laptop out)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from aiohttp import web
from msgspec import Struct

from billing_worker.api.customers.accounts import ACCOUNT, tenant_account
from billing_worker.api.http.appkeys import REDIS, SESSIONS
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, respond
from billing_worker.db.models import Account
from billing_worker.services.errors import NotFound
from shared import keys
from shared.entitlement import RecordError
from shared.redis_connection import RedisClient
from shared.sessions import decode_session, end_session

#: At most this many sessions are listed, most recently used first.
LISTED = 200


class SessionOut(Struct, kw_only=True):
    #: As the gateway's session API names it: ``<account id>.<session id>``.
    id: str
    user_id: str
    created_at: datetime
    last_used_at: datetime


class SessionList(Struct, kw_only=True):
    data: list[SessionOut]


def _instant(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@router.route(
    "GET",
    ACCOUNT + "/sessions",
    summary="The account's live login sessions, most recently used first",
    role=Role.TENANT,
    response=SessionList,
    errors=(404,),
)
async def list_sessions(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        account = await tenant_account(session, request)
    return respond(SessionList(data=await sessions_of(request.app[REDIS], account)))


async def sessions_of(client: RedisClient, account: Account) -> list[SessionOut]:
    """The account's live sessions (the API and the console's account page)."""
    ranked = cast(
        list[tuple[bytes, float]],
        await client.zrevrange(
            keys.sessions_key(account.tenant_id, account.id), 0, LISTED - 1, withscores=True
        ),
    )
    prefix = keys.session_prefix(account.tenant_id, account.id)
    sids = [sid.decode() for sid, _ in ranked]
    entries = cast(
        list[bytes | None], await client.mget([prefix + s for s in sids]) if sids else []
    )
    out = []
    for sid, (_, used_ms), raw in zip(sids, ranked, entries, strict=True):
        if raw is None:
            continue  # expired since it was last used: the gateway forgets it
        try:
            entry = decode_session(raw)
        except RecordError:
            continue
        out.append(SessionOut(id=f"{account.id}.{sid}", user_id=entry.user_id,
                              created_at=_instant(entry.created_ms),
                              last_used_at=_instant(float(used_ms))))  # fmt: skip
    return out


@router.route(
    "DELETE",
    ACCOUNT + "/sessions/{session_id}",
    summary="End one of the account's sessions: its seat is free and every gateway refuses "
    "it at once",
    role=Role.TENANT,
    status=204,
    errors=(404,),
)
async def end_account_session(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        account = await tenant_account(session, request)
    account_id, _, sid = request.match_info["session_id"].partition(".")
    if account_id != account.id or not sid.isascii() or not sid.isalnum() or len(sid) > 40:
        raise NotFound("no such session of this account")
    if not await end_session(request.app[REDIS], account.tenant_id, account.id, sid):
        raise NotFound("no such session of this account")
    return web.Response(status=204)
