"""How an invoice's number reads."""

from __future__ import annotations


def display_number(number: int | None) -> str | None:
    """How a number reads on an invoice: ``INV-000042``."""
    return f"INV-{number:06d}" if number is not None else None
