"""API keys: format, hashing and the gateway's view of a key.

A key reads ``tgk_<id>.<secret>``. The id is public and indexes the key; only a SHA-256
of the secret is stored (keys are 256-bit random, so a slow hash adds nothing), and the
presented secret's hash is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

import msgpack

KEY_PREFIX = "tgk_"
_KEY_SHAPE = re.compile(r"(?P<id>tgk_[A-Za-z0-9_-]+)\.(?P<secret>[A-Za-z0-9_-]+)", re.ASCII)
_SCHEMA = 1


class KeyKind(StrEnum):
    ADMIN = "admin"
    GATEWAY = "gateway"


@dataclass(frozen=True, kw_only=True, slots=True)
class IssuedKey:
    key_id: str
    secret_hash: str
    #: The full key, shown to its owner once and never stored.
    token: str


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyEntry:
    """What the gateway knows of a key (published to Redis by the worker)."""

    key_id: str
    tenant_id: str
    kind: KeyKind
    secret_hash: str
    revoked: bool
    version: int


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def issue_key() -> IssuedKey:
    key_id = KEY_PREFIX + secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return IssuedKey(key_id=key_id, secret_hash=hash_secret(secret), token=f"{key_id}.{secret}")


def split_token(token: str) -> tuple[str, str] | None:
    """``tgk_<id>.<secret>`` -> (id, secret), or None when it is not shaped like a key
    (only ASCII letters, digits, ``-`` and ``_`` on either side of the dot)."""
    if len(token) > 200:
        return None
    shaped = _KEY_SHAPE.fullmatch(token)
    return (shaped["id"], shaped["secret"]) if shaped else None


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def encode_key_entry(entry: KeyEntry) -> bytes:
    payload = {
        "schema": _SCHEMA,
        "key": entry.key_id,
        "tenant": entry.tenant_id,
        "kind": entry.kind.value,
        "hash": entry.secret_hash,
        "revoked": entry.revoked,
        "version": entry.version,
    }
    return bytes(msgpack.packb(payload, use_bin_type=True))


def decode_key_entry(data: bytes) -> KeyEntry | None:
    """Decode a published key; None for anything malformed (treated as no key)."""
    try:
        raw = msgpack.unpackb(data, raw=False)
        if raw.get("schema") != _SCHEMA:
            return None
        return KeyEntry(
            key_id=raw["key"],
            tenant_id=raw["tenant"],
            kind=KeyKind(raw["kind"]),
            secret_hash=raw["hash"],
            revoked=bool(raw["revoked"]),
            version=int(raw["version"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError, msgpack.UnpackException):
        return None
