"""An account's live login sessions, read from the Redis view the gateways keep them in, and
ending one from the management API (a support agent signing a stolen laptop out)."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from msgspec import Struct

from billing_worker.api.customers.accounts import ACCOUNT, tenant_account
from billing_worker.api.http.appkeys import REDIS, SESSIONS
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, respond
from billing_worker.services.errors import NotFound
from billing_worker.services.live_sessions import live_sessions
from shared.sessions import end_session


class SessionOut(Struct, kw_only=True):
    #: As the gateway's session API names it: ``<account id>.<session id>``.
    id: str
    user_id: str
    created_at: datetime
    last_used_at: datetime


class SessionList(Struct, kw_only=True):
    data: list[SessionOut]


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
    live = await live_sessions(request.app[REDIS], account)
    return respond(
        SessionList(
            data=[
                SessionOut(
                    id=s.id, user_id=s.user_id, created_at=s.created_at, last_used_at=s.last_used_at
                )
                for s in live
            ]
        )
    )


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
