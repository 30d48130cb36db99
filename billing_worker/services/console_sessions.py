"""The console's sessions as stored: a key (or the operator key) signs in and gets a session
named by a secret only its SHA-256 of is kept; a session of a key that was revoked since is
no session."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import ApiKey, ConsoleSession
from billing_worker.services.credentials import verified_key
from shared.credentials import KeyKind

#: A console session lasts a working day, then signs in again.
LIFETIME = timedelta(hours=12)


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
    """Store a new console session; returns its secret (shown to no one else)."""
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


async def live_session(session: AsyncSession, secret: str, now: datetime) -> ConsoleSession | None:
    """The live console session ``secret`` names, or None."""
    found = await session.get(ConsoleSession, _digest(secret))
    if found is None or found.expires_at <= now:
        return None
    if found.key_id is not None:
        revoked = await session.scalar(select(ApiKey.revoked_at).where(ApiKey.id == found.key_id))
        if revoked is not None:
            return None
    return found


async def close_session(session: AsyncSession, secret: str) -> None:
    await session.execute(
        delete(ConsoleSession).where(ConsoleSession.secret_hash == _digest(secret))
    )
