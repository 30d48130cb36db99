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
``next_moment`` after each one, applies it, and asks again -- across a parent and its
children at once (``next_in_family``), since they depend on each other. A charge that
becomes due stops the catch-up until it is made: its outcome decides the later moments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


def next_moment(
    *,
    billing: datetime | None,
    dunning: datetime | None,
    access: datetime | None,
) -> datetime | None:
    """The earliest instant at which the account's billing or standing can change.

    Args:
        billing: the start of the next local day on which something becomes billable
            (or a parent's summary draft commits itself).
        dunning: the ladder's next change (``standing.StandingResult.next_change_at``).
        access: the next change of what the subscriptions grant.

    Returns:
        That instant; None when nothing will change without an event.
    """
    return min((at for at in (billing, dunning, access) if at is not None), default=None)


#: How many times in a row one account may be processed at the same instant (a hold that
#: begins or ends asks for the day to be invoiced once more at that instant); more means a
#: rule that never settles, and the catch-up moves on rather than spin.
SAME_INSTANT_LIMIT = 4


@dataclass(frozen=True, kw_only=True, slots=True)
class Member:
    """One account of a family (a parent and its children) being caught up together."""

    key: str
    #: The member's next due moment (None: none).
    due: datetime | None
    #: The last instant it was processed at in this catch-up (None: not yet).
    processed: datetime | None = None


def next_in_family(members: Sequence[Member], now: datetime) -> tuple[str, datetime] | None:
    """Which member to process next, and as of when: the earliest due moment of any member
    up to ``now`` (never before an instant that member was already processed at).

    A parent and its children depend on each other -- the parent's summary lists the
    children's invoices, a delegating child's standing follows the parent's -- so they
    are caught up together, one instant at a time across the family, as a worker awake at
    every moment would have seen them. Ties go to the member listed first (the parent).
    """
    best: tuple[datetime, int, str] | None = None
    for order, member in enumerate(members):
        if member.due is None or member.due > now:
            continue
        at = max(member.due, member.processed) if member.processed else member.due
        if best is None or (at, order) < best[:2]:
            best = (at, order, member.key)
    return (best[2], best[0]) if best is not None else None


#: A moment processed more than this after its instant, with the worker not counted awake
#: meanwhile, was processed *late*: the worker was down (or far behind). Within it, a
#: worker that restarts or works through a renewal-day backlog is on time.
LATE_AFTER = timedelta(hours=1)


@dataclass(frozen=True, kw_only=True, slots=True)
class RealTime:
    """When the outside world sees what a due moment does.

    The catch-up processes each moment as of its own instant, so what is billed does not
    depend on when the worker ran. But a charge, an email or an issued invoice happens
    when the worker really makes it: as of the moment's instant only while the worker
    counts as awake then (a test clock's jump, ``shared.clock``), else at ``now`` -- never
    back-dated. A moment reached more than ``LATE_AFTER`` after its instant is *late*: its
    reminders collapse into the latest, and the retries after a late charge are spaced
    from when it was really made.
    """

    #: The instant the worker is really at.
    now: datetime
    #: Up to when time counts as passed with the worker awake (None: nothing simulated).
    awake_through: datetime | None = None
    late_after: timedelta = LATE_AFTER

    def seen_at(self, at: datetime) -> datetime:
        """When what the moment at ``at`` does happens for the outside world."""
        if self.awake_through is not None and at <= self.awake_through:
            return at
        return max(at, self.now)

    def late(self, at: datetime) -> bool:
        """Whether the moment at ``at`` is being processed late (after an outage)."""
        return self.seen_at(at) - at > self.late_after


def on_time(now: datetime) -> RealTime:
    """Everything up to ``now`` counts as lived awake: what an action at ``now`` does, or a
    unit of work with no clock to ask, happens as of its own moment."""
    return RealTime(now=now, awake_through=now)


def earliest(*moments: datetime | None) -> datetime | None:
    """The earliest of the moments that are known (None when none is)."""
    return min((m for m in moments if m is not None), default=None)
