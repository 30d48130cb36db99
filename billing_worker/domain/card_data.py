"""Recognising card data, so that none is ever accepted or stored.

Tollgate keeps payment-provider tokens only. A request that carries something shaped like
a card — a field named like one, or a string of 13 to 19 digits that passes the Luhn
check — is refused before anything is stored, and the refusal names the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

#: Field names that only card data would use.
CARD_FIELDS = frozenset(
    {"card", "card_number", "cardnumber", "number", "pan", "cvv", "cvc", "cvv2", "cvc2",
     "security_code", "exp", "exp_month", "exp_year", "expiry", "expiration",
     "expiration_date"}
)  # fmt: skip

_DIGITS = re.compile(r"[\d \-]{13,23}")


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def looks_like_card_number(text: str) -> bool:
    """13 to 19 digits (spaces and dashes allowed between them) passing the Luhn check."""
    for match in _DIGITS.finditer(text):
        digits = re.sub(r"[ \-]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return True
    return False


def card_data_fields(document: Any, path: str = "") -> Iterator[str]:
    """The paths in a decoded JSON document that hold (or are named for) card data."""
    if isinstance(document, dict):
        for key, value in document.items():
            where = f"{path}.{key}" if path else str(key)
            if str(key).lower() in CARD_FIELDS:
                yield where
            else:
                yield from card_data_fields(value, where)
    elif isinstance(document, list):
        for n, value in enumerate(document):
            yield from card_data_fields(value, f"{path}[{n}]")
    elif isinstance(document, str) and looks_like_card_number(document):
        yield path or "body"
