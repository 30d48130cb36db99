from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.money import CurrencyMismatch, Money, MoneyError, currency_exponent


@pytest.mark.parametrize(("currency", "exponent"), [("USD", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3)])
def test_each_currency_has_its_own_minor_unit(currency: str, exponent: int) -> None:
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize(
    ("amount", "currency", "rounded"),
    [
        ("0.005", "USD", "0.01"),  # HALF_UP, not banker's rounding
        ("0.015", "USD", "0.02"),
        ("0.025", "USD", "0.03"),
        ("-0.005", "USD", "-0.01"),
        ("12.5", "JPY", "13"),
        ("1.2345", "KWD", "1.235"),
    ],
)
def test_quantize_rounds_half_up_to_the_currency(amount: str, currency: str, rounded: str) -> None:
    assert Money(Decimal(amount), currency).quantize().amount == Decimal(rounded)


def test_parse_refuses_more_digits_than_the_currency_has() -> None:
    with pytest.raises(MoneyError, match="JPY amounts have 0 decimal places"):
        Money.parse("100.5", "JPY")
    assert Money.parse("12.50", "USD").minor == 1250


def test_float_never_becomes_money() -> None:
    with pytest.raises(MoneyError):
        Money(0.1, "USD")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money.parse("1.00", "USD") * 0.5  # type: ignore[operator]


def test_currencies_do_not_mix() -> None:
    with pytest.raises(CurrencyMismatch):
        Money.parse("1.00", "USD") + Money.parse("1.00", "EUR")


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(MoneyError, match="unknown currency"):
        Money.zero("XYZ")


@given(st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from(["USD", "JPY", "KWD"]))
def test_minor_units_round_trip(minor: int, currency: str) -> None:
    money = Money.from_minor(minor, currency)
    assert money.minor == minor
    assert Money.parse(money.format(), currency) == money.quantize()
