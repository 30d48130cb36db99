"""The access decision: a pure function of the user entry, the account record and now."""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.entitlement import EntitlementRecord, UserEntry
from shared.states import Reason, Standing, UserStatus


@dataclass(frozen=True, slots=True)
class Decision:
    allow: bool
    reason: str
    record: EntitlementRecord | None = None
    #: The record's ``valid_until`` has passed: its standing is no longer the account's.
    lapsed: bool = False

    @property
    def standing(self) -> Standing | None:
        if self.record is None:
            return None
        if self.lapsed:  # what the account has become, if the worker said; else not known
            return self.record.lapse_standing
        return self.record.standing


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UNAVAILABLE = Decision(False, Reason.UNAVAILABLE)
UNKNOWN_USER = Decision(False, Reason.UNKNOWN_USER)
USER_DISABLED = Decision(False, Reason.USER_DISABLED)
NO_ENTITLEMENT = Decision(False, Reason.NO_ENTITLEMENT)


def lapsed(record: EntitlementRecord | None, now: float) -> bool:
    """Whether the record's ``valid_until`` has passed: its standing is no longer current."""
    return record is not None and record.valid_until is not None and now >= record.valid_until


def lapse_span(record: EntitlementRecord | None, now: float) -> tuple[float, float]:
    """The times around ``now`` at which :func:`lapsed` says what it says at ``now``."""
    if record is None or record.valid_until is None:
        return -math.inf, math.inf
    if now >= record.valid_until:
        return record.valid_until, math.inf
    return -math.inf, record.valid_until


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
    if lapsed(record, now):
        return Decision(False, Reason.ENTITLEMENT_EXPIRED, record, lapsed=True)
    if feature is not None and feature not in record.features:
        return Decision(False, Reason.FEATURE_NOT_INCLUDED, record)
    return Decision(True, record.reason, record)


def limit_method(decision: Decision, method: str) -> Decision:
    """A read-only (degraded) account may use safe methods only."""
    record = decision.record
    if decision.allow and record is not None and record.read_only:
        if method.upper() not in SAFE_METHODS:
            return Decision(False, Reason.READ_ONLY, record)
    return decision


def fail_open(decision: Decision, age: float) -> Decision:
    """With Redis unreachable, keep a last-known allow only while the tenant permits.

    ``age`` is how old the oldest value behind the decision is. The record's tenant says
    how long such a decision may be served (0: never, fail closed). A last-known deny
    (suspended, cancelled, unknown) stays a deny.
    """
    record = decision.record
    if decision.allow and record is not None and age <= record.fail_open_seconds:
        return decision
    return Decision(False, Reason.UNAVAILABLE, record)
