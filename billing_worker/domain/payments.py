"""Applying a payment to open invoices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.money import Money


@dataclass(frozen=True, kw_only=True, slots=True)
class OpenBalance:
    invoice_id: str
    balance: Money


@dataclass(frozen=True, kw_only=True, slots=True)
class Allocation:
    invoice_id: str
    amount: Money


@dataclass(frozen=True, kw_only=True, slots=True)
class PaymentApplication:
    allocations: tuple[Allocation, ...]
    #: What was left after every open invoice was paid; becomes account credit.
    surplus: Money


def allocate_payment(amount: Money, open_invoices: Sequence[OpenBalance]) -> PaymentApplication:
    """Pay the given invoices in order (oldest first), the rest becomes credit.

    Args:
        amount: a positive payment in the invoices' currency.
        open_invoices: invoices with a positive balance, oldest first.

    Returns:
        How much goes to each invoice, and the surplus.
    """
    if not amount.is_positive():
        raise ValueError("a payment must be positive")
    remaining = amount
    allocations: list[Allocation] = []
    for invoice in open_invoices:
        if remaining.is_zero():
            break
        applied = min(remaining, invoice.balance)
        if applied.is_positive():
            allocations.append(Allocation(invoice_id=invoice.invoice_id, amount=applied))
            remaining = remaining - applied
    return PaymentApplication(allocations=tuple(allocations), surplus=remaining)
