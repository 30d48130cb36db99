"""Prices negotiated for a subscription's plan, as a request gives them: each names a phase
the plan has and replaces a price that phase has, in the bill-to account's currency."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from billing_worker.domain.catalog import Catalog, PhaseType
from billing_worker.domain.subscriptions import PriceOverride
from billing_worker.services.errors import FieldError, InvalidRequest
from shared.money import Money, MoneyError


class OverrideIn(Protocol):
    """A negotiated price as a request gives it: a phase, and amounts in words."""

    @property
    def phase(self) -> str: ...

    @property
    def fixed(self) -> str | None: ...

    @property
    def recurring(self) -> str | None: ...


def negotiated(
    catalog: Catalog,
    plan: str,
    price_list: str,
    given: Sequence[OverrideIn] | None,
    currency: str,
) -> tuple[PriceOverride, ...]:
    """The overrides ``given`` for ``plan`` (on ``price_list``), or a 422 naming every bad
    one (``price_overrides[i].field``)."""
    errors: list[FieldError] = []
    out: list[PriceOverride] = []
    phases = {p.type for p in catalog.plan(plan).phases}
    for i, entry in enumerate(given or ()):
        where = f"price_overrides[{i}]"
        phase = PhaseType(entry.phase)
        if phase not in phases:
            errors.append(FieldError(f"{where}.phase", f"plan {plan!r} has no {phase} phase"))
            continue
        if any(o.phase is phase for o in out):
            errors.append(FieldError(f"{where}.phase", f"the {phase} phase is given twice"))
            continue
        if entry.fixed is None and entry.recurring is None:
            errors.append(FieldError(where, "give a fixed price, a recurring price, or both"))
            continue
        listed = catalog.prices(plan, phase, price_list)
        amounts = {}
        for kind, text, has in (("fixed", entry.fixed, listed.fixed),
                                ("recurring", entry.recurring, listed.recurring)):  # fmt: skip
            if text is None:
                continue
            if not has:
                reason = f"the {phase} phase has no {kind} price to replace"
                errors.append(FieldError(f"{where}.{kind}", reason))
                continue
            try:
                amounts[kind] = Money.parse(text, currency).quantize().amount
            except MoneyError as exc:
                errors.append(FieldError(f"{where}.{kind}", str(exc)))
        out.append(PriceOverride(phase, amounts.get("fixed"), amounts.get("recurring")))
    if errors:
        raise InvalidRequest.fields(errors)
    return tuple(out)
