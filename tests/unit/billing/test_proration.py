from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_worker.domain.proration import day_fraction, prorate, split_at
from shared.money import Money


@pytest.mark.parametrize(
    ("price", "currency", "used", "days", "expected"),
    [
        ("30.00", "USD", 10, 30, "10.00"),
        ("10.00", "USD", 1, 3, "3.33"),  # 0.333333333 x 10 = 3.33333333 -> 3.33
        ("10.00", "USD", 2, 3, "6.67"),  # 0.666666667 x 10 = 6.66666667 -> 6.67
        ("49.99", "USD", 15, 31, "24.19"),  # 0.483870968 x 49.99 = 24.18870969 -> 24.19
        ("1000", "JPY", 1, 3, "333"),
        ("1000", "JPY", 1, 2, "500"),
        ("1.000", "KWD", 1, 7, "0.143"),  # 0.142857143 -> 0.142857143 KWD -> 0.143
        ("29.00", "USD", 0, 28, "0.00"),
        ("29.00", "USD", 28, 28, "29.00"),
    ],
)
def test_prorate_by_day_half_up_in_the_currency(
    price: str, currency: str, used: int, days: int, expected: str
) -> None:
    assert prorate(Money.parse(price, currency), used, days) == Money.parse(expected, currency)


def test_the_fraction_is_rounded_to_nine_places_first() -> None:
    assert day_fraction(1, 3) == Decimal("0.333333333")
    assert day_fraction(2, 3) == Decimal("0.666666667")


def test_bad_days_are_refused() -> None:
    with pytest.raises(ValueError, match="days_used"):
        day_fraction(31, 30)
    with pytest.raises(ValueError, match="at least one day"):
        day_fraction(0, 0)


def test_cancelling_mid_february_credits_the_unused_days() -> None:
    split = split_at(Money.parse("28.00", "USD"), date(2027, 2, 1), date(2027, 3, 1),
                     date(2027, 2, 15))  # fmt: skip
    assert (split.used, split.credit) == (Money.parse("14.00", "USD"), Money.parse("14.00", "USD"))


amounts = st.integers(min_value=0, max_value=10**12)
currencies = st.sampled_from(["USD", "JPY", "KWD"])


@given(amounts, currencies, st.integers(min_value=1, max_value=400), st.data())
def test_a_repair_plus_the_billed_remainder_is_what_was_billed(
    minor: int, currency: str, days: int, data: st.DataObject
) -> None:
    billed = Money.from_minor(minor, currency)
    start = date(2027, 1, 1)
    cut = start + timedelta(days=data.draw(st.integers(min_value=0, max_value=days)))
    split = split_at(billed, start, start + timedelta(days=days), cut)
    assert split.used + split.credit == billed
    assert split.used.minor >= 0
    assert split.credit.minor >= 0  # never a negative credit


@given(amounts, currencies, st.integers(min_value=1, max_value=400), st.data())
def test_proration_stays_within_the_price_and_grows_with_days(
    minor: int, currency: str, days: int, data: st.DataObject
) -> None:
    price = Money.from_minor(minor, currency)
    used = data.draw(st.integers(min_value=0, max_value=days - 1))
    fewer, more = prorate(price, used, days), prorate(price, used + 1, days)
    assert Money.zero(currency) <= fewer <= more <= price
    assert isinstance(fewer.amount, Decimal)
