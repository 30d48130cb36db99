"""A subscription's recurring price per month on a day, worked by hand from the catalog
fixture: pro-monthly 31.00/month, pro-annual 365.00/year, team-monthly 10.00 per seat,
pro-trial free for 14 days, and the wholesale price list's pro-monthly at 24.80."""

from __future__ import annotations

from datetime import date

import pytest

from billing_worker.domain.revenue import monthly_amount, segment_on
from billing_worker.domain.subscriptions import Pause, Terms
from tests.unit.billing.catalog_fixture import catalog_at

START = date(2027, 1, 1)


def _monthly(terms: Terms, day: date, currency: str = "USD") -> str | None:
    segment = segment_on(terms, catalog_at, day)
    return None if segment is None else monthly_amount(segment, catalog_at, currency).format()


@pytest.mark.parametrize(
    ("terms", "day", "expected"),
    [
        (Terms("s", "pro-monthly", START, START), date(2027, 3, 5), "31.00"),
        (Terms("s", "pro-annual", START, START), date(2027, 3, 5), "30.42"),  # 365 / 12
        (Terms("s", "team-monthly", START, START, quantity=7), date(2027, 3, 5), "70.00"),
        (Terms("s", "pro-trial", START, START), date(2027, 1, 10), "0.00"),  # in its trial
        (Terms("s", "pro-trial", START, START), date(2027, 1, 20), "31.00"),
        (Terms("s", "pro-monthly", START, START, price_list="wholesale"), date(2027, 2, 1),
         "24.80"),
        (Terms("s", "pro-monthly", START, START), date(2026, 12, 31), None),  # not yet billed
        (Terms("s", "pro-monthly", START, START, pauses=(Pause(date(2027, 2, 1), None),)),
         date(2027, 3, 5), None),  # paused: nothing billed
    ],
)  # fmt: skip
def test_the_monthly_amount_is_the_recurring_price_per_month(
    terms: Terms, day: date, expected: str | None
) -> None:
    assert _monthly(terms, day) == expected


def test_a_currency_without_decimals_rounds_to_whole_yen() -> None:
    annual = Terms("s", "pro-annual", START, START)
    assert _monthly(annual, date(2027, 3, 5), "JPY") == "3042"  # 36500 / 12 = 3041.67
