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
#: Test-mode clock offset (integer microseconds), the test instant through which the
#: worker counts as awake (epoch microseconds; ``shared.clock``), and the channel
#: announcing a move. The two keys share a hash tag: one script sets both.
CLOCK_KEY: Final = f"{PREFIX}:{{clock}}:offset"
CLOCK_AWAKE_KEY: Final = f"{PREFIX}:{{clock}}:awake"
CLOCK_CHANNEL: Final = f"{PREFIX}:clock"
#: Present while the published view is whole: written by the worker after a rebuild.
#: Missing (a FLUSHALL, a Redis restarted empty), gateways are not ready and fail by policy.
VIEW_KEY: Final = f"{PREFIX}:view"
#: Present while a rebuild runs (with an expiry, in case its worker dies).
VIEW_BUILDING_KEY: Final = f"{PREFIX}:view:building"
#: Announced on ``INVALIDATION_CHANNEL`` after a rebuild: gateways drop every cached entry.
FORGET_ALL: Final = "*"


def account_key(tenant_id: str, account_id: str) -> str:
    """Entitlement record of one account."""
    return f"{PREFIX}:{{{tenant_id}:{account_id}}}:ent"


def user_key(tenant_id: str, user_id: str) -> str:
    """User index entry: end user -> account and the user's own status."""
    return f"{PREFIX}:{{{tenant_id}:u:{user_id}}}:user"


def sessions_key(tenant_id: str, account_id: str) -> str:
    """Sorted set of an account's live sessions, scored by last use (ms)."""
    return f"{PREFIX}:{{{tenant_id}:{account_id}}}:sessions"


def session_prefix(tenant_id: str, account_id: str) -> str:
    """Prefix of an account's session keys (``<prefix><session id>``)."""
    return f"{PREFIX}:{{{tenant_id}:{account_id}}}:sess:"


def usage_key(tenant_id: str, account_id: str, day: str) -> str:
    """Hash of one account's usage on one UTC day (``YYYY-MM-DD``): logins, peak sessions."""
    return f"{PREFIX}:{{{tenant_id}:{account_id}}}:usage:{day}"


def active_users_key(tenant_id: str, account_id: str, day: str) -> str:
    """Set of the account's distinct active users on one UTC day."""
    return f"{PREFIX}:{{{tenant_id}:{account_id}}}:active:{day}"


def usage_accounts_key(day: str) -> str:
    """Set of ``tenant:account`` that recorded usage on one UTC day (the fold's work list)."""
    return f"{PREFIX}:usage:accounts:{day}"


def api_key_key(key_id: str) -> str:
    """A gateway key's public id -> its tenant and hashed secret."""
    return f"{PREFIX}:key:{key_id}"


def all_keys_pattern() -> str:
    """SCAN pattern matching every key Tollgate owns (used by rebuild)."""
    return f"{PREFIX}:*"


#: Decision counts are kept for the console's last hour, and a little more.
DECISIONS_RETENTION_SECONDS: Final = 2 * 3600


def decisions_key(tenant_id: str, minute: int) -> str:
    """Hash of a tenant's decisions in one minute (UNIX time // 60): ``allow:<reason>`` and
    ``deny:<reason>`` to counts, added to by every gateway's write-back."""
    return f"{PREFIX}:{{{tenant_id}}}:decisions:{minute}"
