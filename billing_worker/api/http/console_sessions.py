"""The console's sessions: a tenant admin key (or the operator key) exchanged for an HttpOnly,
SameSite cookie. The key itself is never kept: a session names the key that signed in, so
revoking the key ends it. Only a SHA-256 of the cookie's secret is stored, like keys.

The management API accepts the cookie in place of ``Authorization`` (the console's forms
call the API itself, so what they change is validated and audited exactly as an API call
is); a request that changes anything must then carry the session's CSRF token in
``X-CSRF-Token``: a cookie alone, which a browser sends to any site's form, changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.api.http.credentials import verified_key
from billing_worker.db.models import ApiKey, ConsoleSession
from shared.credentials import KeyKind

COOKIE = "tollgate_console"
CSRF_HEADER = "X-CSRF-Token"
#: A console session lasts a working day, then signs in again.
LIFETIME = timedelta(hours=12)
SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


@dataclass(frozen=True, slots=True)
class Signer:
    """Who a sign-in key is: an admin key of a tenant, or the operator."""

    key_id: str | None
    tenant_id: str | None

    @property
    def operator(self) -> bool:
        return self.key_id is None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def signer_of(session: AsyncSession, token: str, operator_key: str) -> Signer | None:
    """The signer a key names, or None (unknown, revoked, a gateway key): all alike."""
    if hmac.compare_digest(token.encode(), operator_key.encode()):
        return Signer(None, None)
    key = await verified_key(session, token)
    if key is None or key.kind != KeyKind.ADMIN:
        return None
    return Signer(key.id, key.tenant_id)


async def open_session(session: AsyncSession, signer: Signer, now: datetime) -> str:
    """Store a new console session; returns the cookie's secret (shown to no one else)."""
    await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
    secret = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            secret_hash=_digest(secret),
            key_id=signer.key_id,
            tenant_id=signer.tenant_id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + LIFETIME,
        )
    )
    return secret


async def session_of(
    session: AsyncSession, request: web.Request, now: datetime
) -> ConsoleSession | None:
    """The live console session the request's cookie names, or None."""
    secret = request.cookies.get(COOKIE)
    if not secret:
        return None
    found = await session.get(ConsoleSession, _digest(secret))
    if found is None or found.expires_at <= now:
        return None
    if found.key_id is not None:
        revoked = await session.scalar(select(ApiKey.revoked_at).where(ApiKey.id == found.key_id))
        if revoked is not None:
            return None
    return found


async def close_session(session: AsyncSession, request: web.Request) -> None:
    secret = request.cookies.get(COOKIE)
    if secret:
        await session.execute(
            delete(ConsoleSession).where(ConsoleSession.secret_hash == _digest(secret))
        )


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
