"""Day-based proration, exactly as the architecture states it.

    prorated = price * round(days_used / days_in_period, 9, HALF_UP)

then rounded HALF_UP to the currency's minor unit. A credit for the unused part of a
period is *what was billed minus the prorated charge for the days used*, never a second,
separately rounded proration: so a repair plus the billed remainder always equals what was
billed, to the minor unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from shared.money import Money

FRACTION_PLACES = Decimal("1E-9")


def day_fraction(days_used: int, days_in_period: int) -> Decimal:
    """``days_used / days_in_period`` rounded HALF_UP to nine places."""
    if days_in_period <= 0:
        raise ValueError("a period has at least one day")
    if not 0 <= days_used <= days_in_period:
        raise ValueError(f"days_used must be within 0..{days_in_period}, got {days_used}")
    return (Decimal(days_used) / Decimal(days_in_period)).quantize(
        FRACTION_PLACES, rounding=ROUND_HALF_UP
    )


def prorate(price: Money, days_used: int, days_in_period: int) -> Money:
    """The charge for ``days_used`` days of a ``days_in_period``-day period.

    Args:
        price: the full period's price.
        days_used: days of the period to charge for.
        days_in_period: the period's length in days.

    Returns:
        ``price * day_fraction(days_used, days_in_period)``, HALF_UP to the minor unit.
    """
    return (price * day_fraction(days_used, days_in_period)).quantize()


@dataclass(frozen=True, kw_only=True, slots=True)
class Split:
    """A billed period cut at a day: what the used days cost, and what goes back."""

    used: Money
    credit: Money


def split_at(billed: Money, period_start: date, period_end: date, cut: date) -> Split:
    """Cut a period billed in advance at ``cut`` (a cancellation, a change, a pause).

    Args:
        billed: what the period was invoiced for (already in minor units).
        period_start: first day of the period.
        period_end: first day after the period (half-open).
        cut: first day no longer used; ``period_start <= cut <= period_end``.

    Returns:
        The charge kept for the used days and the credit for the rest, which add up to
        ``billed`` exactly.
    """
    if not period_start <= cut <= period_end:
        raise ValueError(f"cut {cut} is outside the period {period_start}..{period_end}")
    used = prorate(billed, (cut - period_start).days, (period_end - period_start).days)
    return Split(used=used, credit=billed - used)
