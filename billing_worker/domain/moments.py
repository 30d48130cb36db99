"""An account's due moments: the instants at which its billing or standing can change with
no outside event, and the order in which a late worker must process them.

Catch-up equivalence rests on this module. Whatever happened between two evaluations of an
account (a second, a weekend of downtime, a 90-day jump of the test clock), the worker
processes every due moment up to now in time order, each *as of its own instant*: the
invoice of 1 February is issued on 1 February, the suspension of day 31 happens on day 31
and holds billing from that day, the retry of day 7 is charged on day 7 and its outcome
is known before day 14 is looked at. The result is the one a worker awake at every moment
would have reached.

Only the *next* moment can be known in advance: what a moment does (an invoice issued, a
charge declined, a stage entered) decides the ones after it. So the worker asks
``next_moment`` after each one, applies it, and asks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Due(StrEnum):
    """Why an account is due at a moment."""

    #: Something becomes billable (a period in advance, a period in arrear, a phase).
    BILLING = "billing"
    #: The dunning ladder's answer changes: a stage, a reminder, a retry, a due date.
    DUNNING = "dunning"
    #: A subscription's dates change what is granted (a trial ends, a pause, a term).
    ACCESS = "access"


@dataclass(frozen=True, kw_only=True, slots=True)
class Moment:
    at: datetime
    #: Every reason the account is due at ``at`` (several can fall on one instant).
    due: frozenset[Due]


def next_moment(
    *,
    billing: datetime | None,
    dunning: datetime | None,
    access: datetime | None,
) -> Moment | None:
    """The earliest instant at which the account's billing or standing can change.

    Args:
        billing: the start of the next local day on which something becomes billable.
        dunning: the ladder's next change (``standing.StandingResult.next_change_at``).
        access: the next change of what the subscriptions grant.

    Returns:
        The moment, with every reason that falls on it; None when nothing will change
        without an event.
    """
    candidates = {Due.BILLING: billing, Due.DUNNING: dunning, Due.ACCESS: access}
    known = {due: at for due, at in candidates.items() if at is not None}
    if not known:
        return None
    at = min(known.values())
    return Moment(at=at, due=frozenset(due for due, when in known.items() if when == at))


@dataclass(frozen=True, kw_only=True, slots=True)
class CatchUp:
    """The next instant to process while catching an account up to ``now``, if any."""

    at: datetime | None
    #: Why the catch-up stops here (None while there is more to do).
    stop: str | None


#: How many times one instant may be processed again (a hold that begins or ends asks for
#: the day to be invoiced once more at the same instant); more means a rule that never
#: settles, and the catch-up moves on rather than spin.
SAME_INSTANT_LIMIT = 4


def catch_up_step(
    *,
    processed: datetime,
    following: datetime | None,
    now: datetime,
    charge_pending: bool,
    repeats: int,
) -> CatchUp:
    """Decide what a catch-up does after processing the moment ``processed``.

    Args:
        processed: the instant just processed.
        following: the account's next due moment after processing it.
        now: the instant the account is being caught up to.
        charge_pending: a charge became due at ``processed``; its outcome (a payment or a
            decline) decides what the later moments do, so the collector must make it,
            as of ``processed``, before the account goes further.
        repeats: how many times in a row ``processed`` has been processed already.

    Returns:
        The next instant to process, or why to stop.
    """
    if charge_pending:
        return CatchUp(at=None, stop="charge_pending")
    if following is None or following > now:
        return CatchUp(at=None, stop="caught_up")
    if following > processed:
        return CatchUp(at=following, stop=None)
    # Due again at (or, by a local date, before) the instant just processed: time never
    # goes back, so the same instant is processed once more.
    if repeats < SAME_INSTANT_LIMIT:
        return CatchUp(at=processed, stop=None)
    return CatchUp(at=None, stop="no_progress")
