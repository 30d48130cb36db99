"""Login sessions for applications: create, refresh, end.

``POST /v1/sessions`` logs a user in when the account allows it and has a free seat
(the plan's policy decides between refusing the new login and evicting the oldest).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.appkeys import CLOCK, SESSIONS, STORE, VERIFIED, WRITEBACK
from gateway.decisions.callers import tenant_for
from gateway.decisions.decision import Decision, decide
from gateway.logins.sessions import parse_public_id
from gateway.responses import (
    decision_body,
    json_response,
    unauthorized,
    unavailable,
    user_request,
)
from gateway.view.refs import SessionRef, StoreUnavailable
from gateway.view.store import read_record, read_session, read_user
from shared.problem import problem_response
from shared.states import Reason


def _denied(user_id: str, decision: Decision, **extra: Any) -> web.Response:
    body = decision_body(user_id, decision)
    return problem_response(
        403,
        "login_denied",
        "The user may not log in",
        f"reason: {decision.reason}",
        **{k: v for k, v in body.items() if k != "allow"},
        **extra,
    )


async def create_session(request: web.Request) -> web.Response:
    parsed = await user_request(request)
    if isinstance(parsed, web.Response):
        return parsed
    _body, user_id = parsed
    store, now = request.app[STORE], request.app[CLOCK].timestamp()
    try:
        authorization = request.headers.get("Authorization")
        tenant_id = await tenant_for(store.live, request.app[VERIFIED], authorization)
        if tenant_id is None:
            return unauthorized()
        user = await read_user(store.live, tenant_id, user_id)
        record = await read_record(store.live, tenant_id, user.account_id) if user else None
        decision = decide(user, record, now)
        if not decision.allow or record is None:
            return _denied(user_id, decision)
        result = await request.app[SESSIONS].login(record, user_id, now)
    except StoreUnavailable:
        return unavailable()
    if not result.created or result.ref is None:
        seat_limited = Decision(False, Reason.SEAT_LIMIT_REACHED, record)
        return _denied(
            user_id, seat_limited, seat_limit=record.seat_limit, live_sessions=result.live_sessions
        )
    request.app[WRITEBACK].active(tenant_id, record.account_id, user_id, now)
    return json_response(
        {
            **decision_body(user_id, decision),
            "session_id": result.ref.public_id,
            "token": result.token,
            "idle_timeout": record.session_idle_seconds,
            "live_sessions": result.live_sessions,
            "seat_limit": record.seat_limit,
            "evicted": list(result.evicted),
        },
        status=201,
    )


async def _session_of(request: web.Request) -> tuple[str, SessionRef] | web.Response:
    app = request.app
    tenant_id = await tenant_for(
        app[STORE].live, app[VERIFIED], request.headers.get("Authorization")
    )
    if tenant_id is None:
        return unauthorized()
    ref = parse_public_id(tenant_id, request.match_info["session_id"])
    if ref is None:
        return _no_session()
    return tenant_id, ref


def _no_session() -> web.Response:
    return problem_response(404, "no_session", "No such session (ended, evicted or expired)")


async def refresh_session(request: web.Request) -> web.Response:
    store, now = request.app[STORE], request.app[CLOCK].timestamp()
    try:
        found = await _session_of(request)
        if isinstance(found, web.Response):
            return found
        tenant_id, ref = found
        session = await read_session(store.live, ref)
        if session is None:
            return _no_session()
        user = await read_user(store.live, tenant_id, session.user_id)
        record = await read_record(store.live, tenant_id, ref.account_id)
        decision = decide(user, record, now)
        if not decision.allow or record is None:
            return _denied(session.user_id, decision)
        if not await request.app[SESSIONS].touch(ref, record.session_idle_seconds, now):
            return _no_session()
    except StoreUnavailable:
        return unavailable()
    return json_response(
        {
            **decision_body(session.user_id, decision),
            "session_id": ref.public_id,
            "idle_timeout": record.session_idle_seconds,
        }
    )


async def end_session(request: web.Request) -> web.Response:
    try:
        found = await _session_of(request)
        if isinstance(found, web.Response):
            return found
        _tenant_id, ref = found
        ended = await request.app[SESSIONS].end(ref)
    except StoreUnavailable:
        return unavailable()
    # Every gateway forgets the session when the announcement arrives; this one at once, so
    # the caller's next request here is refused however late the announcement is.
    request.app[STORE].cache.invalidate(ref.key)
    return web.Response(status=204) if ended else _no_session()
