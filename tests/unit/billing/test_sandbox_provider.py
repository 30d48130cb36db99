"""The sandbox provider: the token scripts the story, the key makes a charge happen once."""

from __future__ import annotations

import pytest

from billing_worker.payments.providers import Outcome, PaymentProvider, SandboxProvider
from shared.money import Money

AMOUNT = Money.parse("31.00", "USD")


@pytest.mark.parametrize(
    ("token", "outcome", "reason", "hard"),
    [
        ("tok_sandbox_success", Outcome.SUCCEEDED, None, False),
        ("tok_sandbox_insufficient_funds", Outcome.DECLINED, "insufficient_funds", False),
        ("tok_sandbox_stolen", Outcome.DECLINED, "stolen_card", True),
        ("tok_sandbox_expired", Outcome.DECLINED, "expired_card", True),
        ("tok_sandbox_processing_error", Outcome.FAILED, "processing_error", False),
        ("tok_sandbox_timeout", Outcome.UNKNOWN, "timeout", False),
    ],
)
async def test_each_token_tells_its_story(
    token: str, outcome: Outcome, reason: str | None, hard: bool
) -> None:
    provider: PaymentProvider = SandboxProvider()
    result = await provider.charge(token, AMOUNT, "key-1")
    assert (result.outcome, result.reason, result.hard) == (outcome, reason, hard)


async def test_a_key_is_charged_once_and_a_timeout_is_learned_by_lookup() -> None:
    provider = SandboxProvider()
    first = await provider.charge("tok_sandbox_timeout", AMOUNT, "inv_1-attempt-1")
    again = await provider.charge("tok_sandbox_timeout", AMOUNT, "inv_1-attempt-1")
    assert first == again
    assert first.outcome is Outcome.UNKNOWN
    learned = await provider.lookup("inv_1-attempt-1")
    assert learned is not None
    assert learned.outcome is Outcome.SUCCEEDED
    assert learned.reference == first.reference
    assert await provider.lookup("never-sent") is None


async def test_tokens_from_elsewhere_are_refused() -> None:
    provider = SandboxProvider()
    assert not provider.accepts("4242424242424242")
    result = await provider.charge("tok_live_abc", AMOUNT, "k")
    assert (result.outcome, result.reason, result.hard) == (Outcome.DECLINED, "unknown_token", True)


async def test_a_suffix_names_one_card_with_the_scripted_outcome() -> None:
    provider = SandboxProvider()
    assert provider.accepts("tok_sandbox_success_visa4242")
    assert provider.accepts("tok_sandbox_insufficient_funds_amex1")
    assert not provider.accepts("tok_sandbox_success_")
    assert not provider.accepts("tok_sandbox_nope_visa")
    usd = Money.parse("5.00", "USD")
    ok = await provider.charge("tok_sandbox_success_visa4242", usd, "k1")
    declined = await provider.charge("tok_sandbox_stolen_x9", usd, "k2")
    assert ok.outcome is Outcome.SUCCEEDED
    assert (declined.outcome, declined.hard) == (Outcome.DECLINED, True)
