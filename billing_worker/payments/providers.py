"""Payment providers: the one third party Tollgate cannot reach in tests.

A provider charges a *token* (never card data) for an amount under an idempotency key and
says what happened. An unknown outcome (a timeout) is never retried under a new key: it is
looked up later with the same key. ``SandboxProvider`` is built in: the token decides the
outcome, so demos and tests can script any story.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Protocol

from shared.money import Money


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    #: The provider failed to process it; nothing was charged and a retry may work.
    FAILED = "failed"
    #: No answer (a timeout): the charge may or may not have happened; look it up.
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ChargeResult:
    outcome: Outcome
    #: Why a charge did not succeed: insufficient_funds, stolen_card, expired_card,
    #: processing_error, timeout.
    reason: str | None = None
    #: A hard decline (stolen or expired card): retrying the same token is pointless.
    hard: bool = False
    reference: str | None = None


class PaymentProvider(Protocol):
    name: str

    @property
    def key_lifetime(self) -> timedelta | None:
        """How long the provider remembers an idempotency key (Stripe: 24 hours). Past it,
        a charge repeated under the key could be made twice, so an unsettled attempt is no
        longer repeated: it is looked up by its reference, or parked. None: forever."""
        ...

    def accepts(self, token: str) -> bool:
        """Whether ``token`` is one of this provider's tokens."""
        ...

    async def charge(self, token: str, amount: Money, idempotency_key: str) -> ChargeResult:
        """Charge once per key: the same key returns the first answer."""
        ...

    async def lookup(
        self, idempotency_key: str, *, reference: str | None = None
    ) -> ChargeResult | None:
        """What became of the charge made with this key -- the provider's ``reference`` of
        it when one was answered -- or None: the provider never saw it, or cannot say
        without a charge repeated under the key (safe within ``key_lifetime``)."""
        ...

    async def refund(
        self,
        charge_key: str,
        amount: Money,
        idempotency_key: str,
        *,
        reference: str | None = None,
    ) -> ChargeResult:
        """Give back (part of) the charge made under ``charge_key`` — the provider's own
        ``reference`` of it when known — once per key."""
        ...


#: Sandbox tokens and what charging them does.
SANDBOX_TOKENS: dict[str, ChargeResult] = {
    "tok_sandbox_success": ChargeResult(Outcome.SUCCEEDED),
    "tok_sandbox_insufficient_funds": ChargeResult(Outcome.DECLINED, "insufficient_funds"),
    "tok_sandbox_stolen": ChargeResult(Outcome.DECLINED, "stolen_card", hard=True),
    "tok_sandbox_expired": ChargeResult(Outcome.DECLINED, "expired_card", hard=True),
    "tok_sandbox_processing_error": ChargeResult(Outcome.FAILED, "processing_error"),
    "tok_sandbox_timeout": ChargeResult(Outcome.UNKNOWN, "timeout"),
}


#: ``tok_sandbox_declines_<n>``: the first n charges of the token are declined
#: (insufficient funds), later ones succeed -- a payment recovered on a retry.
_DECLINES = re.compile(r"^tok_sandbox_declines_([1-9][0-9]?)$")


def _scripted_as(token: str) -> str | None:
    """The sandbox token ``token`` behaves as: itself, or a scripted token with a suffix
    naming one card (``tok_sandbox_success_visa4242``), so an account can hold several."""
    if token in SANDBOX_TOKENS or _DECLINES.match(token):
        return token
    base, _, suffix = token.rpartition("_")
    return base if base in SANDBOX_TOKENS and suffix.isalnum() else None


class SandboxProvider:
    """Outcomes chosen by the token; a timeout's charge turns out to have succeeded."""

    name = "sandbox"
    key_lifetime: timedelta | None = None

    def __init__(self) -> None:
        self._charges: dict[str, tuple[str, Money, ChargeResult]] = {}
        self._refunds: dict[str, ChargeResult] = {}
        self._charged: dict[str, int] = {}

    def accepts(self, token: str) -> bool:
        return _scripted_as(token) is not None

    def _scripted(self, token: str) -> ChargeResult:
        declines = _DECLINES.match(token)
        if declines is None:
            return SANDBOX_TOKENS[_scripted_as(token) or token]
        self._charged[token] = self._charged.get(token, 0) + 1
        if self._charged[token] <= int(declines.group(1)):
            return SANDBOX_TOKENS["tok_sandbox_insufficient_funds"]
        return SANDBOX_TOKENS["tok_sandbox_success"]

    async def charge(self, token: str, amount: Money, idempotency_key: str) -> ChargeResult:
        if not self.accepts(token):
            return ChargeResult(Outcome.DECLINED, "unknown_token", hard=True)
        if idempotency_key in self._charges:
            return self._charges[idempotency_key][2]
        scripted = self._scripted(token)
        reference = f"sbx_{idempotency_key}"
        result = ChargeResult(scripted.outcome, scripted.reason, scripted.hard, reference)
        self._charges[idempotency_key] = (token, amount, result)
        return result

    async def lookup(
        self, idempotency_key: str, *, reference: str | None = None
    ) -> ChargeResult | None:
        found = self._charges.get(idempotency_key)
        if found is None:
            return None
        _token, _amount, result = found
        if result.outcome is Outcome.UNKNOWN:
            return ChargeResult(Outcome.SUCCEEDED, reference=result.reference)
        return result

    async def refund(
        self,
        charge_key: str,
        amount: Money,
        idempotency_key: str,
        *,
        reference: str | None = None,
    ) -> ChargeResult:
        if idempotency_key in self._refunds:
            return self._refunds[idempotency_key]
        charge = await self.lookup(charge_key)
        if charge is None or charge.outcome is not Outcome.SUCCEEDED:
            result = ChargeResult(Outcome.DECLINED, "no_such_charge")
        else:
            result = ChargeResult(Outcome.SUCCEEDED, reference=f"sbx_refund_{idempotency_key}")
        self._refunds[idempotency_key] = result
        return result
