"""Checking a presented key against the stored ones: the one place a key's secret is
compared, for the API's ``Authorization`` and the console's sign-in alike."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import ApiKey
from shared.credentials import secret_matches, split_token


async def verified_key(session: AsyncSession, token: str) -> ApiKey | None:
    """The live key a token names, whatever its kind; None when it names none, its secret
    does not match or it was revoked (all alike to the caller)."""
    parts = split_token(token)
    key_id, secret = parts if parts is not None else ("", "")
    key = await session.get(ApiKey, key_id) if key_id else None
    # the secret is hashed even for an unknown id, so timing does not tell ids apart
    matches = secret_matches(secret, key.secret_hash if key else "0" * 64)
    if key is None or not matches or key.revoked_at is not None:
        return None
    return key
