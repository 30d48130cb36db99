"""Card data is recognised wherever a request puts it."""

from __future__ import annotations

import pytest

from billing_worker.domain.card_data import card_data_fields, looks_like_card_number, luhn_valid


@pytest.mark.parametrize(
    "text",
    ["4242424242424242", "4242 4242 4242 4242", "5555-5555-5555-4444", "378282246310005",
     "paid with 4000056655665556 yesterday"],
)  # fmt: skip
def test_card_numbers_are_recognised(text: str) -> None:
    assert looks_like_card_number(text)


@pytest.mark.parametrize(
    "text", ["4242424242424241", "tok_sandbox_success", "1234", "2027-01-01", "acc_01J9XYZ"]
)
def test_other_strings_are_not(text: str) -> None:
    assert not looks_like_card_number(text)


def test_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


def test_fields_named_or_shaped_like_card_data_are_found_by_path() -> None:
    body = {
        "token": "tok_sandbox_success",
        "label": "Visa 4242 4242 4242 4242",
        "billing": {"cvc": "123"},
        "notes": ["fine", "5555555555554444"],
    }
    assert sorted(card_data_fields(body)) == ["billing.cvc", "label", "notes[1]"]
