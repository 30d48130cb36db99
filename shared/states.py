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


class Reason(StrEnum):
    """Why a decision (and an account's standing) is what it is: the ``reason`` the gateway
    answers with. Each value's meaning is in ``REASONS`` (the README's list must name every
    one; a test checks)."""

    # the account's standing, as the worker published it
    IN_GOOD_STANDING = "in_good_standing"
    PAYMENT_DUE = "payment_due"
    PAYMENT_OVERDUE = "payment_overdue"
    PAYMENT_DECLINED = "payment_declined"
    SUSPENDED_MANUALLY = "suspended_manually"
    SUBSCRIPTION_PAUSED = "subscription_paused"
    NO_ACTIVE_SUBSCRIPTION = "no_active_subscription"
    DUNNING_EXEMPT = "dunning_exempt"
    SUBSCRIPTION_EXEMPT = "subscription_exempt"
    # what the gateway decides beyond the standing
    ENTITLEMENT_EXPIRED = "entitlement_expired"
    FEATURE_NOT_INCLUDED = "feature_not_included"
    READ_ONLY = "read_only"
    SEAT_LIMIT_REACHED = "seat_limit_reached"
    USER_DISABLED = "user_disabled"
    UNKNOWN_USER = "unknown_user"
    NO_ENTITLEMENT = "no_entitlement"
    UNAVAILABLE = "unavailable"


REASONS: dict[Reason, str] = {
    Reason.IN_GOOD_STANDING: "active: nothing is past due (allowed)",
    Reason.PAYMENT_DUE: "grace: an invoice is past due, within the grace period (allowed)",
    Reason.PAYMENT_OVERDUE: "degraded, suspended or cancelled by the dunning ladder",
    Reason.PAYMENT_DECLINED: "the ladder's stage after a hard decline (a stolen or expired card)",
    Reason.SUSPENDED_MANUALLY: "the tenant suspended the account by hand",
    Reason.SUBSCRIPTION_PAUSED: "every subscription that would grant access is paused",
    Reason.NO_ACTIVE_SUBSCRIPTION: "no subscription grants access now (ended, not started)",
    Reason.DUNNING_EXEMPT: "the account is exempt from dunning (allowed whatever it owes)",
    Reason.SUBSCRIPTION_EXEMPT: "suspended, but an exempt subscription keeps its access",
    Reason.ENTITLEMENT_EXPIRED: "the record's valid_until passed before the worker's update "
    "arrived: the gateway denies on its own and reports the standing the account lapsed into",
    Reason.FEATURE_NOT_INCLUDED: "the plan does not include the feature asked for",
    Reason.READ_ONLY: "degraded to read-only: only GET, HEAD and OPTIONS pass the proxy",
    Reason.SEAT_LIMIT_REACHED: "a login beyond the plan's seat limit (deny_new)",
    Reason.USER_DISABLED: "the user is disabled",
    Reason.UNKNOWN_USER: "no such user for this tenant (also another tenant's user)",
    Reason.NO_ENTITLEMENT: "nothing published for the account: an empty Redis denies",
    Reason.UNAVAILABLE: "Redis could not be read and the fail policy allows no last-known answer",
}
