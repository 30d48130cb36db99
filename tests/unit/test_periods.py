from datetime import UTC, datetime

import pytest

from billing_worker.domain.periods import add_months, periods_due


def at(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "months", "cycle_day", "expected"),
    [
        (at(2027, 1, 31), 1, 31, at(2027, 2, 28)),  # past the month's end: its last day
        (at(2028, 1, 31), 1, 31, at(2028, 2, 29)),  # leap year
        (at(2027, 2, 28), 1, 31, at(2027, 3, 31)),  # and back to the 31st after February
        (at(2027, 3, 31), 1, 31, at(2027, 4, 30)),
        (at(2027, 12, 15), 1, 15, at(2028, 1, 15)),  # year boundary
        (at(2027, 1, 30), 13, 30, at(2028, 2, 29)),
    ],
)
def test_cycle_day_past_month_end_falls_back_to_last_day(
    start: datetime, months: int, cycle_day: int, expected: datetime
) -> None:
    assert add_months(start, months, cycle_day) == expected


def test_periods_due_covers_every_started_period_in_order() -> None:
    periods = periods_due(next_start=at(2027, 1, 31), cycle_day=31, now=at(2027, 3, 31))
    assert [(p.start.date().isoformat(), p.end.date().isoformat()) for p in periods] == [
        ("2027-01-31", "2027-02-28"),
        ("2027-02-28", "2027-03-31"),
        ("2027-03-31", "2027-04-30"),
    ]


def test_nothing_due_before_the_start() -> None:
    assert periods_due(next_start=at(2027, 5, 1), cycle_day=1, now=at(2027, 4, 30)) == []
