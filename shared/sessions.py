"""A login session as stored in Redis, shared by the gateway (which creates, checks and ends
sessions) and the worker (whose API and console list an account's sessions and end one).

An account's sessions: a sorted set of session ids scored by last use in ms
(``keys.sessions_key``) and, per session, its entry (``keys.session_prefix`` + id):
msgpack ``{"schema", "user", "hash", "created"}`` — the secret itself is never stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

from shared.entitlement import RecordError

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
