"""Billing periods on local dates: month-end fallback and aligned cycles."""

from __future__ import annotations

from datetime import date

import pytest

from billing_worker.domain.calendar import BillingPeriod, Cycle, add_months

D = date


@pytest.mark.parametrize(
    ("start", "months", "cycle_day", "expected"),
    [
        (D(2027, 1, 31), 1, 31, D(2027, 2, 28)),  # past the month's end: its last day
        (D(2028, 1, 31), 1, 31, D(2028, 2, 29)),  # leap year
        (D(2027, 2, 28), 1, 31, D(2027, 3, 31)),  # and back to the 31st after February
        (D(2027, 3, 31), 1, 31, D(2027, 4, 30)),
        (D(2027, 12, 15), 1, 15, D(2028, 1, 15)),  # year boundary
        (D(2027, 1, 30), 13, 30, D(2028, 2, 29)),
    ],
)
def test_cycle_day_past_month_end_falls_back_to_last_day(
    start: date, months: int, cycle_day: int, expected: date
) -> None:
    assert add_months(start, months, cycle_day) == expected


def test_monthly_periods_on_day_31_in_order() -> None:
    cycle = Cycle(BillingPeriod.MONTHLY, D(2027, 1, 31), 31)
    periods = cycle.periods(D(2027, 1, 31), D(2027, 4, 1))
    assert [(p.start.isoformat(), p.end.isoformat()) for p in periods] == [
        ("2027-01-31", "2027-02-28"),
        ("2027-02-28", "2027-03-31"),
        ("2027-03-31", "2027-04-30"),
    ]


def test_nothing_before_the_start() -> None:
    cycle = Cycle(BillingPeriod.MONTHLY, D(2027, 5, 1), 1)
    assert list(cycle.periods(D(2027, 5, 1), D(2027, 5, 1))) == []


@pytest.mark.parametrize(
    ("period", "day", "expected"),
    [
        (BillingPeriod.DAILY, D(2027, 3, 9), ("2027-03-09", "2027-03-10")),
        (BillingPeriod.WEEKLY, D(2027, 1, 9), ("2027-01-08", "2027-01-15")),
        (BillingPeriod.QUARTERLY, D(2027, 5, 20), ("2027-04-01", "2027-07-01")),
        (BillingPeriod.ANNUAL, D(2027, 12, 31), ("2027-01-01", "2028-01-01")),
    ],
)
def test_each_period_kind_contains_its_day(
    period: BillingPeriod, day: date, expected: tuple[str, str]
) -> None:
    span = Cycle(period, D(2027, 1, 1), 1).containing(day)
    assert (span.start.isoformat(), span.end.isoformat()) == expected
