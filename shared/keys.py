"""The Redis key schema shared by the worker (writer) and the gateway (reader).

Every name carries the schema version, so a new layout can be rolled out beside the
old one. Keys of one account share a Redis Cluster hash tag (the part in braces),
so the account record and its sessions always live in one slot.
"""

from __future__ import annotations

from typing import Final

PREFIX: Final = "tg:v1"

#: Channel on which the worker announces changed keys; gateways drop them from memory.
INVALIDATION_CHANNEL: Final = f"{PREFIX}:invalidate"
#: Test-mode clock offset (integer microseconds) and the channel announcing a move.
CLOCK_KEY: Final = f"{PREFIX}:clock:offset"
CLOCK_CHANNEL: Final = f"{PREFIX}:clock"


def account_key(tenant_id: str, account_id: str) -> str:
    """Entitlement record of one account."""
    return f"{PREFIX}:{{{tenant_id}:{account_id}}}:ent"


def user_key(tenant_id: str, user_id: str) -> str:
    """User index entry: end user -> account and the user's own status."""
    return f"{PREFIX}:{{{tenant_id}:u:{user_id}}}:user"


def api_key_key(key_id: str) -> str:
    """A gateway key's public id -> its tenant and hashed secret."""
    return f"{PREFIX}:key:{key_id}"


def all_keys_pattern() -> str:
    """SCAN pattern matching every key Tollgate owns (used by rebuild)."""
    return f"{PREFIX}:*"
