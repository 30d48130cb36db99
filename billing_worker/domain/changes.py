"""Changes a customer asks for, decided by the catalog's rules: cancelling (when access
and billing end, and what is credited), changing plan (when, and from which day the new
plan is billed), whether an add-on may join a base plan, and a new billing cycle day
(from the next period)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import assert_never

from billing_worker.domain.catalog import (
    Catalog,
    Category,
    ChangePolicy,
    PhaseAlignment,
)
from billing_worker.domain.subscriptions import (
    Cancellation,
    CatalogAt,
    CycleChange,
    PlanChange,
    SubscriptionError,
    Terms,
    billing_segments,
    current_term,
    phase_on,
    plan_on,
)


@dataclass(frozen=True, slots=True)
class CancelRequest:
    requested_on: date
    #: IMMEDIATE, END_OF_TERM, or None for the catalog's rule; ignored with a date.
    entitlement_policy: ChangePolicy | None = None
    entitlement_date: date | None = None
    #: "immediate" (prorated credit), "end_of_term" (no credit) or "start_of_term" (full
    #: credit of the current period); None for the catalog's rule.
    billing_policy: str | None = None


BILLING_POLICIES = ("immediate", "end_of_term", "start_of_term")


def cancellation_for(
    terms: Terms, catalog_at: CatalogAt, request: CancelRequest, account_cycle_day: int | None
) -> Cancellation:
    """Resolve a cancel request into the day access ends and the day billing ends."""
    if (
        terms.cancellation is not None
        and terms.cancellation.entitlement_end <= request.requested_on
    ):
        raise SubscriptionError("subscription", "the subscription is already cancelled")
    day = request.requested_on
    catalog = catalog_at(day)
    plan, _ = plan_on(terms, day)
    phase = phase_on(terms, catalog_at, day) or catalog.plan(plan).phases[0].type
    default = catalog.cancel_policy(plan=plan, phase_type=phase)
    term = current_term(terms, catalog_at, day, account_cycle_day)
    if request.billing_policy is not None and request.billing_policy not in BILLING_POLICIES:
        raise SubscriptionError("billing_policy", f"must be one of {', '.join(BILLING_POLICIES)}")
    billing_policy = request.billing_policy or default.value
    if day < terms.billing_start:
        billing_end = terms.billing_start  # cancelled before billing began: nothing billed
    elif term is None or billing_policy == "immediate":
        billing_end = day
    elif billing_policy == "end_of_term":
        billing_end = term.end
    else:
        billing_end = term.start
    if request.entitlement_date is not None:
        if request.entitlement_date < day:
            raise SubscriptionError("entitlement_date", "must not be in the past")
        entitlement_end = request.entitlement_date
    elif (request.entitlement_policy or default) is ChangePolicy.IMMEDIATE or term is None:
        entitlement_end = day
    else:
        entitlement_end = term.end
    return Cancellation(entitlement_end=entitlement_end, billing_end=billing_end)


@dataclass(frozen=True, slots=True)
class ChangeRequest:
    requested_on: date
    plan: str
    price_list: str | None = None
    #: IMMEDIATE or END_OF_TERM, or None for the catalog's rule.
    policy: ChangePolicy | None = None


def plan_change_for(
    terms: Terms, catalog_at: CatalogAt, request: ChangeRequest, account_cycle_day: int | None
) -> PlanChange:
    """Resolve a change request: when it takes effect and how the new plan's phases align."""
    day = request.requested_on
    catalog = catalog_at(day)
    if request.plan not in catalog.plans:
        raise SubscriptionError("plan", f"the catalog has no plan {request.plan!r}")
    current_plan, current_list = plan_on(terms, day)
    price_list = request.price_list or current_list
    if not catalog.has_price_list(price_list):
        raise SubscriptionError("price_list", f"the catalog has no price list {price_list!r}")
    old_product = catalog.product_of(current_plan)
    new_product = catalog.product_of(request.plan)
    if old_product.category is not new_product.category:
        raise SubscriptionError(
            "plan",
            f"{request.plan!r} is a {new_product.category} plan; the subscription is "
            f"{old_product.category}",
        )
    if terms.cancellation is not None and terms.cancellation.entitlement_end <= day:
        raise SubscriptionError("subscription", "a cancelled subscription cannot change plan")
    phase = phase_on(terms, catalog_at, day) or catalog.plan(current_plan).phases[0].type
    policy = request.policy or catalog.change_policy(
        from_plan=current_plan,
        to_plan=request.plan,
        from_price_list=current_list,
        to_price_list=price_list,
        phase_type=phase,
    )
    match policy:
        case ChangePolicy.IMMEDIATE:
            effective = day
        case ChangePolicy.END_OF_TERM:
            term = current_term(terms, catalog_at, day, account_cycle_day)
            effective = term.end if term else day
        case _:
            assert_never(policy)
    return PlanChange(
        effective=effective,
        plan=request.plan,
        price_list=price_list,
        restart_phases=catalog.phase_alignment(
            from_plan=current_plan,
            to_plan=request.plan,
            from_price_list=current_list,
            to_price_list=price_list,
            phase_type=phase,
        )
        is PhaseAlignment.RESTART,
    )


def add_on_allowed(catalog: Catalog, base_plan: str, add_on_plan: str) -> str | None:
    """Why ``add_on_plan`` cannot be bought for ``base_plan`` (None: it can)."""
    add_on = catalog.product_of(add_on_plan)
    if add_on.category is not Category.ADD_ON:
        return f"{add_on_plan!r} is not an add-on plan"
    base = catalog.product_of(base_plan)
    if add_on.name in base.included:
        return f"{add_on.name!r} is included in {base.name!r}"
    if add_on.name not in base.available:
        return f"{add_on.name!r} is not available for {base.name!r}"
    return None


def with_cycle_day(
    terms: Terms, catalog_at: CatalogAt, today: date, account_cycle_day: int | None, day: int
) -> Terms | None:
    """``terms`` with the account's cycle day moved to ``day`` from the end of the period
    in progress (or from the next billed day, when nothing is billed today); None when
    nothing is billed from today on. A change not yet begun is replaced."""
    term = current_term(terms, catalog_at, today, account_cycle_day)
    if term is not None:
        effective = term.end
    else:
        starts = [s.span.start for s in billing_segments(terms, catalog_at) if s.span.start > today]
        if not starts:
            return None
        effective = starts[0]
    kept = tuple(c for c in terms.cycle_changes if c.effective < effective)
    replaced = [c for c in terms.cycle_changes if c.effective >= effective]
    previous = kept[-1].day if kept else replaced[0].previous if replaced else account_cycle_day
    return replace(terms, cycle_changes=(*kept, CycleChange(effective, day, previous)))
