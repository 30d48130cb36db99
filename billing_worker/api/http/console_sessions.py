"""The console's sessions: a tenant admin key (or the operator key) exchanged for an HttpOnly,
SameSite cookie. The key itself is never kept: a session names the key that signed in, so
revoking the key ends it. Only a SHA-256 of the cookie's secret is stored, like keys.

The management API accepts the cookie in place of ``Authorization`` (the console's forms
call the API itself, so what they change is validated and audited exactly as an API call
is); a request that changes anything must then carry the session's CSRF token in
``X-CSRF-Token``: a cookie alone, which a browser sends to any site's form, changes nothing.
"""

from __future__ import annotations

import hmac
from datetime import datetime

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import ConsoleSession
from billing_worker.services import console_sessions
from billing_worker.services.console_sessions import LIFETIME

COOKIE = "tollgate_console"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


async def session_of(
    session: AsyncSession, request: web.Request, now: datetime
) -> ConsoleSession | None:
    """The live console session the request's cookie names, or None."""
    secret = request.cookies.get(COOKIE)
    return await console_sessions.live_session(session, secret, now) if secret else None


async def close_session(session: AsyncSession, request: web.Request) -> None:
    secret = request.cookies.get(COOKIE)
    if secret:
        await console_sessions.close_session(session, secret)


def csrf_ok(found: ConsoleSession, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), found.csrf_token.encode())


def set_cookie(response: web.StreamResponse, request: web.Request, secret: str) -> None:
    response.set_cookie(
        COOKIE,
        secret,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        max_age=int(LIFETIME.total_seconds()),
    )
