"""Amounts as requests give them: a positive amount in the account's own currency."""

from __future__ import annotations

from billing_worker.db.models import Account
from billing_worker.services.errors import InvalidRequest
from shared.money import Money, MoneyError


def parse_amount(text: str, currency: str, field: str = "amount") -> Money:
    """A positive amount in ``currency``, or a 422 naming ``field``."""
    try:
        amount = Money.parse(text, currency)
    except MoneyError as exc:
        raise InvalidRequest.field(field, str(exc)) from exc
    if not amount.is_positive():
        raise InvalidRequest.field(field, "must be greater than zero")
    return amount


def in_currency_of(account: Account, currency: str) -> None:
    """Refuse an amount in another currency than the account's."""
    if currency != account.currency:
        raise InvalidRequest.field(
            "currency", f"the account is billed in {account.currency}, not {currency}"
        )
