"""HMAC-SHA256 webhook signatures over a timestamp and the raw body.

Header: ``t=<unix seconds>,v1=<hex digest of "<t>.<raw body>">``. The receiver recomputes
the digest with the shared secret, compares in constant time and refuses a timestamp
outside the tolerance, so a captured request cannot be replayed later. The same scheme
signs the webhooks Tollgate sends and verifies the ones payment providers send it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

HEADER = "Tollgate-Signature"
TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    pass


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify(
    secret: str, header: str | None, body: bytes, now: float, *, tolerance: int = TOLERANCE_SECONDS
) -> int:
    """Check ``header`` for ``body``; returns its timestamp or raises ``SignatureError``."""
    if not header:
        raise SignatureError(f"the {HEADER} header is missing")
    parts: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        parts.setdefault(name, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureError("the signature has no valid timestamp (t=)") from None
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"the signature's timestamp is more than {tolerance} s away")
    expected = _digest(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, given) for given in parts.get("v1", ())):
        raise SignatureError("the signature does not match the body")
    return timestamp
