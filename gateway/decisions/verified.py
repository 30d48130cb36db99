"""Presented secrets already checked against the entry now held, so each is hashed once.

Gateway keys and session tokens carry a secret whose SHA-256 the worker (keys) or the
login script (sessions) stored. Checking it costs a hash and a constant-time compare on
every request; this memo skips both when the same secret was already verified against
the very entry object the near-cache holds now. Any change to the stored side -- a
revoked key, an ended session, or only the near-cache's TTL running out -- brings a new
entry object, and the secret is verified afresh. Only secrets that passed the check are
remembered, up to ``max_size`` of them (then the memo starts over).
"""

from __future__ import annotations

from typing import Protocol

from shared.credentials import secret_matches


class HoldsSecretHash(Protocol):
    @property
    def secret_hash(self) -> str: ...


class VerifiedSecrets:
    def __init__(self, *, max_size: int = 16_384) -> None:
        self._max_size = max_size
        self._verified: dict[str, HoldsSecretHash] = {}

    def matches(self, secret: str, entry: HoldsSecretHash) -> bool:
        if self._verified.get(secret) is entry:
            return True
        if not secret_matches(secret, entry.secret_hash):
            return False
        if len(self._verified) >= self._max_size:
            self._verified.clear()
        self._verified[secret] = entry
        return True

    def __len__(self) -> int:
        return len(self._verified)
