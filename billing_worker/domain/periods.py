"""Billing periods: calendar months anchored on a billing cycle day."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class Period:
    """A half-open billing period ``[start, end)``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")


def add_months(moment: datetime, months: int, cycle_day: int) -> datetime:
    """Move ``moment`` by whole months, landing on ``cycle_day``.

    A cycle day past the end of the target month falls back to that month's last day
    (cycle day 31 bills on 30 April and on 28 or 29 February).
    """
    if not 1 <= cycle_day <= 31:
        raise ValueError(f"cycle_day must be 1..31, got {cycle_day}")
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    return moment.replace(year=year, month=month + 1, day=min(cycle_day, last_day))


def monthly_period(start: datetime, cycle_day: int) -> Period:
    """The monthly period that begins at ``start``."""
    return Period(start=start, end=add_months(start, 1, cycle_day))


def periods_due(*, next_start: datetime, cycle_day: int, now: datetime) -> list[Period]:
    """Every period billed in advance whose start is at or before ``now``, in order."""
    due: list[Period] = []
    start = next_start
    while start <= now:
        period = monthly_period(start, cycle_day)
        due.append(period)
        start = period.end
    return due
