"""A login session as stored in Redis, shared by the gateway (which creates, checks and ends
sessions) and the worker (whose API and console list an account's sessions and end one).

An account's sessions: a sorted set of session ids scored by last use in ms
(``keys.sessions_key``) and, per session, its entry (``keys.session_prefix`` + id):
msgpack ``{"schema", "user", "hash", "created"}`` — the secret itself is never stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

from shared import keys
from shared.entitlement import RecordError
from shared.redis_connection import RedisClient

SCHEMA = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionEntry:
    user_id: str
    secret_hash: str
    created_ms: int


def encode_session(entry: SessionEntry) -> bytes:
    payload = {
        "schema": SCHEMA,
        "user": entry.user_id,
        "hash": entry.secret_hash,
        "created": entry.created_ms,
    }
    return bytes(msgpack.packb(payload, use_bin_type=True))


def decode_session(data: bytes) -> SessionEntry:
    try:
        raw = msgpack.unpackb(data, raw=False)
        if raw.get("schema") != SCHEMA:
            raise RecordError("unsupported session schema")
        return SessionEntry(
            user_id=raw["user"], secret_hash=raw["hash"], created_ms=int(raw["created"])
        )
    except (KeyError, TypeError, ValueError, AttributeError, msgpack.UnpackException) as exc:
        raise RecordError(f"undecodable session: {exc}") from exc


async def end_session(client: RedisClient, tenant_id: str, account_id: str, sid: str) -> bool:
    """End one session, as a logout does: its seat is free, and every gateway is told to
    forget it. False when there was no such session."""
    key = keys.session_prefix(tenant_id, account_id) + sid
    index = keys.sessions_key(tenant_id, account_id)
    # a script, not MULTI: a cluster runs no transaction holding a PUBLISH (both keys
    # carry the account's hash tag, so the script runs in one slot)
    deleted = await client.eval(_END, 2, index, key, sid, keys.INVALIDATION_CHANNEL)
    return bool(deleted)


_END = """
redis.call('ZREM', KEYS[1], ARGV[1])
local deleted = redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[2], KEYS[2])
return deleted
"""
