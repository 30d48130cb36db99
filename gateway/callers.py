"""Which tenant is calling: its gateway key, checked against the published key entry."""

from __future__ import annotations

from gateway.store import Reader, read_key
from shared.credentials import KeyKind, bearer_token, secret_matches, split_token


async def tenant_for(reader: Reader, authorization: str | None) -> str | None:
    """The tenant of a valid, unrevoked gateway key, or None."""
    token = bearer_token(authorization)
    parts = split_token(token) if token else None
    if parts is None:
        return None
    key_id, secret = parts
    entry = await read_key(reader, key_id)
    if entry is None or entry.revoked or entry.kind is not KeyKind.GATEWAY:
        return None
    return entry.tenant_id if secret_matches(secret, entry.secret_hash) else None
