"""Reading a catalog's rules: plan-change and cancellation policies, billing and phase
alignment, each a list of cases matched most specific first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billing_worker.domain.calendar import BillingPeriod
from billing_worker.domain.catalog.fields import FieldReader
from billing_worker.domain.catalog.model import (
    DEFAULT_PRICE_LIST,
    TRANSITION_KEYS,
    AlignmentCase,
    BillingAlignment,
    CancelCase,
    ChangeCase,
    ChangePolicy,
    PhaseAlignment,
    PhaseAlignmentCase,
    PhaseType,
    Product,
    Rules,
)


def read_rules(
    r: FieldReader,
    value: object,
    products: Mapping[str, Product],
    price_lists: Mapping[str, object],
) -> Rules:
    spec = r.mapping(value, "rules", required=False)
    r.known_keys(spec, "rules", ("change", "cancel", "billing_alignment", "phase_alignment"))

    def product(value: object, path: str) -> str | None:
        if value is not None and value not in products:
            r.fail(path, f"{value!r} is not a product of this catalog")
        return None if value is None else str(value)

    def price_list(value: object, path: str) -> str | None:
        if value is not None and value != DEFAULT_PRICE_LIST and value not in price_lists:
            r.fail(path, f"{value!r} is not a price list of this catalog")
        return None if value is None else str(value)

    def transition(s: Mapping[str, Any], p: str, decision: str) -> dict[str, Any]:
        """The keys a change rule's case matches on (every one optional)."""
        r.known_keys(s, p, (decision, *TRANSITION_KEYS))
        return {
            "phase_type": r.enum(PhaseType, s.get("phase_type"), f"{p}.phase_type", required=False),
            "from_product": product(s.get("from_product"), f"{p}.from_product"),
            "to_product": product(s.get("to_product"), f"{p}.to_product"),
            "from_billing_period": r.enum(
                BillingPeriod,
                s.get("from_billing_period"),
                f"{p}.from_billing_period",
                required=False,
            ),
            "to_billing_period": r.enum(
                BillingPeriod, s.get("to_billing_period"), f"{p}.to_billing_period", required=False
            ),
            "from_price_list": price_list(s.get("from_price_list"), f"{p}.from_price_list"),
            "to_price_list": price_list(s.get("to_price_list"), f"{p}.to_price_list"),
        }

    def change(s: Mapping[str, Any], p: str) -> ChangeCase | None:
        keys = transition(s, p, "policy")
        policy = r.enum(ChangePolicy, s.get("policy"), f"{p}.policy")
        return ChangeCase(policy=policy, **keys) if policy else None

    def phase_case(s: Mapping[str, Any], p: str) -> PhaseAlignmentCase | None:
        keys = transition(s, p, "alignment")
        chosen = r.enum(PhaseAlignment, s.get("alignment"), f"{p}.alignment")
        return PhaseAlignmentCase(alignment=chosen, **keys) if chosen else None

    def cancel(s: Mapping[str, Any], p: str) -> CancelCase | None:
        r.known_keys(s, p, ("policy", "phase_type", "product"))
        policy = r.enum(ChangePolicy, s.get("policy"), f"{p}.policy")
        phase_type = r.enum(PhaseType, s.get("phase_type"), f"{p}.phase_type", required=False)
        case = CancelCase(
            policy=policy or ChangePolicy.END_OF_TERM,
            phase_type=phase_type,
            product=product(s.get("product"), f"{p}.product"),
        )
        return case if policy else None

    def alignment(s: Mapping[str, Any], p: str) -> AlignmentCase | None:
        r.known_keys(s, p, ("alignment", "billing_period", "product"))
        chosen = r.enum(BillingAlignment, s.get("alignment"), f"{p}.alignment")
        period = r.enum(
            BillingPeriod, s.get("billing_period"), f"{p}.billing_period", required=False
        )
        case = AlignmentCase(
            alignment=chosen or BillingAlignment.ACCOUNT,
            billing_period=period,
            product=product(s.get("product"), f"{p}.product"),
        )
        return case if chosen else None

    # ``phase_alignment`` is one alignment for every change, or cases like ``change``'s
    # (the first that matches decides; a change matching none keeps the clock).
    raw = spec.get("phase_alignment", "keep")
    cases: list[PhaseAlignmentCase] = []
    if isinstance(raw, list):
        cases = list(r.each(raw, "rules.phase_alignment", phase_case))
        raw = "keep"
    phase_alignment = r.enum(PhaseAlignment, raw, "rules.phase_alignment")
    return Rules(
        change=tuple(r.each(spec.get("change"), "rules.change", change)),
        cancel=tuple(r.each(spec.get("cancel"), "rules.cancel", cancel)),
        billing_alignment=tuple(
            r.each(spec.get("billing_alignment"), "rules.billing_alignment", alignment)
        ),
        phase_alignment=phase_alignment or PhaseAlignment.KEEP,
        phase_alignment_cases=tuple(cases),
    )
