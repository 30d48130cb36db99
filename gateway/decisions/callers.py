"""Which tenant is calling: its gateway key, checked against the published key entry."""

from __future__ import annotations

from gateway.decisions.verified import VerifiedSecrets
from gateway.view.store import Reader, read_key
from shared.credentials import KeyKind, bearer_token, split_token


async def tenant_for(
    reader: Reader, verified: VerifiedSecrets, authorization: str | None
) -> str | None:
    """The tenant of a valid, unrevoked gateway key, or None."""
    token = bearer_token(authorization)
    parts = split_token(token) if token else None
    if parts is None:
        return None
    key_id, secret = parts
    entry = await read_key(reader, key_id)
    if entry is None or entry.revoked or entry.kind is not KeyKind.GATEWAY:
        return None
    return entry.tenant_id if verified.matches(secret, entry) else None
