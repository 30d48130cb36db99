"""The access decision: a pure function of the user entry, the account record and now."""

from __future__ import annotations

from dataclasses import dataclass

from shared.entitlement import EntitlementRecord, UserEntry
from shared.states import Standing, UserStatus


@dataclass(frozen=True, slots=True)
class Decision:
    allow: bool
    reason: str
    record: EntitlementRecord | None = None

    @property
    def standing(self) -> Standing | None:
        return self.record.standing if self.record else None


UNKNOWN_USER = Decision(False, "unknown_user")
USER_DISABLED = Decision(False, "user_disabled")
NO_ENTITLEMENT = Decision(False, "no_entitlement")


def decide(
    user: UserEntry | None,
    record: EntitlementRecord | None,
    now: float,
    feature: str | None = None,
) -> Decision:
    """Whether ``user`` may log in (or use ``feature``) at UNIX time ``now``.

    Order matters: who the user is, then the account's standing, then time, then feature.
    A missing record denies: an empty or flushed Redis never turns into an allow.
    """
    if user is None or user.status is UserStatus.DELETED:
        return UNKNOWN_USER
    if user.status is UserStatus.DISABLED:
        return USER_DISABLED
    if record is None or record.account_id != user.account_id:
        return NO_ENTITLEMENT
    if not record.standing.grants_access:
        return Decision(False, record.reason, record)
    if record.valid_until is not None and now >= record.valid_until:
        return Decision(False, "entitlement_expired", record)
    if feature is not None and feature not in record.features:
        return Decision(False, "feature_not_included", record)
    return Decision(True, record.reason, record)
