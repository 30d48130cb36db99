"""Money as Decimal with each currency's own minor unit (ISO 4217), never float.

Amounts are stored as integer minor units plus a three-letter code. Rounding is
HALF_UP, and happens only at the named points that call :meth:`Money.quantize`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 exponents that differ from the common 2; every other known code uses 2.
_EXPONENTS: dict[str, int] = {
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0,
}  # fmt: skip
_TWO_DIGIT: frozenset[str] = frozenset(
    "AED ARS AUD BDT BGN BRL CAD CHF CNY COP CZK DKK EGP EUR GBP HKD HUF IDR ILS INR "
    "MAD MXN MYR NGN NOK NZD PEN PHP PKR PLN QAR RON RSD RUB SAR SEK SGD THB TRY TWD "
    "UAH USD ZAR".split()
)


class MoneyError(ValueError):
    """Invalid money value."""


class CurrencyMismatch(MoneyError):
    """Arithmetic across different currencies."""


def currency_exponent(currency: str) -> int:
    """Number of minor-unit digits of an ISO 4217 currency code."""
    if currency in _EXPONENTS:
        return _EXPONENTS[currency]
    if currency in _TWO_DIGIT:
        return 2
    raise MoneyError(f"unknown currency code {currency!r}")


def is_currency(code: object) -> bool:
    return isinstance(code, str) and (code in _EXPONENTS or code in _TWO_DIGIT)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in one currency. ``amount`` may carry more digits until quantized."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise MoneyError(f"amount must be a Decimal, not {type(self.amount).__name__}")
        if not self.amount.is_finite():
            raise MoneyError("amount must be finite")
        currency_exponent(self.currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """Parse a decimal string such as ``"12.50"``; rejects more digits than the currency has."""
        try:
            amount = Decimal(text)
        except (InvalidOperation, TypeError) as exc:
            raise MoneyError(f"{text!r} is not a decimal number") from exc
        money = cls(amount, currency)
        if money.quantize().amount != amount:
            exp = currency_exponent(currency)
            raise MoneyError(f"{currency} amounts have {exp} decimal places, got {text!r}")
        return money

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        exp = currency_exponent(currency)
        return cls(Decimal(minor).scaleb(-exp), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls.from_minor(0, currency)

    @property
    def minor(self) -> int:
        """Integer minor units; the amount must already be quantized."""
        exp = currency_exponent(self.currency)
        scaled = self.amount.scaleb(exp)
        if scaled != scaled.to_integral_value():
            raise MoneyError(f"{self} is not quantized to {self.currency} minor units")
        return int(scaled)

    def quantize(self) -> Money:
        """Round HALF_UP to the currency's minor unit."""
        exp = currency_exponent(self.currency)
        return Money(self.amount.quantize(Decimal(1).scaleb(-exp), ROUND_HALF_UP), self.currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, float):
            raise MoneyError("multiply money by a Decimal or int, never a float")
        return Money(self.amount * factor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def is_zero(self) -> bool:
        return self.amount == 0

    def is_positive(self) -> bool:
        return self.amount > 0

    def format(self) -> str:
        """Plain decimal string with exactly the currency's digits, e.g. ``"12.50"``."""
        return str(self.quantize().amount)

    def __str__(self) -> str:
        return f"{self.format()} {self.currency}"
