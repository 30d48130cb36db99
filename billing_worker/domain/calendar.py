"""Billing periods on local dates: daily to annual, aligned on a billing cycle day.

Every date here is a local calendar date in the account's time zone and every span is
half-open, ``[start, end)``. Month-based periods land on the billing cycle day, and a
cycle day past the end of a month falls back to that month's last day: cycle day 31
gives 28 (or 29) February, 30 April, 31 May.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum


class BillingPeriod(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    ANNUAL = "annual"
    #: No recurring charge (a plan of fixed prices only).
    NONE = "none"


_MONTHS = {BillingPeriod.MONTHLY: 1, BillingPeriod.QUARTERLY: 3, BillingPeriod.ANNUAL: 12}
_DAYS = {BillingPeriod.DAILY: 1, BillingPeriod.WEEKLY: 7}


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """Local dates ``[start, end)``."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"span ends ({self.end}) before it starts ({self.start})")

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day < self.end

    def intersect(self, other: Span) -> Span | None:
        start, end = max(self.start, other.start), min(self.end, other.end)
        return Span(start, end) if start < end else None

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def month_day(year: int, month: int, day: int) -> date:
    """``day`` of the month, or the month's last day when it is shorter."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def add_months(day: date, months: int, cycle_day: int | None = None) -> date:
    """Move by whole months, landing on ``cycle_day`` (default: ``day``'s own day)."""
    target = cycle_day if cycle_day is not None else day.day
    if not 1 <= target <= 31:
        raise ValueError(f"billing cycle day must be 1..31, got {target}")
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return month_day(year, month + 1, target)


def next_cycle_day(day: date, cycle_day: int) -> date:
    """The first date on or after ``day`` that falls on ``cycle_day`` (with fallback)."""
    this_month = month_day(day.year, day.month, cycle_day)
    return this_month if this_month >= day else add_months(day, 1, cycle_day)


@dataclass(frozen=True, slots=True)
class Cycle:
    """The boundaries of one billing period kind.

    Month-based periods start on ``cycle_day`` in months ``anchor.month + k * n``;
    daily and weekly ones start on ``anchor + k * n`` days.
    """

    period: BillingPeriod
    anchor: date
    cycle_day: int

    def __post_init__(self) -> None:
        if self.period is BillingPeriod.NONE:
            raise ValueError("a plan without a billing period has no cycle")
        if not 1 <= self.cycle_day <= 31:
            raise ValueError(f"billing cycle day must be 1..31, got {self.cycle_day}")

    def _boundary(self, k: int) -> date:
        if self.period in _DAYS:
            return self.anchor + timedelta(days=k * _DAYS[self.period])
        return add_months(self.anchor, k * _MONTHS[self.period], self.cycle_day)

    def _index(self, day: date) -> int:
        """``k`` such that boundary(k) <= day < boundary(k + 1)."""
        if self.period in _DAYS:
            return (day - self.anchor).days // _DAYS[self.period]
        months = (day.year - self.anchor.year) * 12 + day.month - self.anchor.month
        k = months // _MONTHS[self.period]
        return k - 1 if self._boundary(k) > day else k

    def containing(self, day: date) -> Span:
        """The period that ``day`` falls in."""
        k = self._index(day)
        return Span(self._boundary(k), self._boundary(k + 1))

    def periods(self, start: date, until: date | None = None) -> Iterator[Span]:
        """Periods overlapping ``[start, until)``, in order (endless when ``until`` is None)."""
        k = self._index(start)
        while True:
            period = Span(self._boundary(k), self._boundary(k + 1))
            if until is not None and period.start >= until:
                return
            yield period
            k += 1


def account_cycle(period: BillingPeriod, start: date, cycle_day: int) -> Cycle:
    """Periods aligned on the account's billing cycle day (the first one prorated)."""
    return Cycle(period, start, cycle_day)


def anniversary_cycle(period: BillingPeriod, start: date) -> Cycle:
    """Periods that start on the subscription's own start date."""
    return Cycle(period, start, start.day)
