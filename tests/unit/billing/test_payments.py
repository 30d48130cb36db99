import pytest

from billing_worker.domain.payments import OpenBalance, allocate_payment
from shared.money import Money


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


def test_pays_oldest_first_and_keeps_the_surplus() -> None:
    application = allocate_payment(
        usd("60.00"),
        [OpenBalance(invoice_id="old", balance=usd("49.00")),
         OpenBalance(invoice_id="new", balance=usd("49.00"))],
    )  # fmt: skip
    assert [(a.invoice_id, a.amount) for a in application.allocations] == [
        ("old", usd("49.00")),
        ("new", usd("11.00")),
    ]
    assert application.surplus == usd("0.00")


def test_overpayment_becomes_surplus() -> None:
    application = allocate_payment(
        usd("100.00"), [OpenBalance(invoice_id="a", balance=usd("49.00"))]
    )
    assert application.surplus == usd("51.00")


def test_payment_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        allocate_payment(usd("0.00"), [])
