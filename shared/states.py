"""State vocabularies both sides use (standard library only)."""

from __future__ import annotations

from enum import StrEnum


class Standing(StrEnum):
    """The dunning ladder, best to worst."""

    ACTIVE = "active"
    GRACE = "grace"
    DEGRADED = "degraded"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"
    #: Not a rung of the ladder: every subscription that would grant access is paused.
    PAUSED = "paused"

    @property
    def grants_access(self) -> bool:
        return self in _GRANTING


_GRANTING = frozenset({Standing.ACTIVE, Standing.GRACE, Standing.DEGRADED})


class SessionPolicy(StrEnum):
    """What happens to a login beyond the seat limit."""

    DENY_NEW = "deny_new"
    EVICT_OLDEST = "evict_oldest"


class UserStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"
    DELETED = "deleted"
