"""The catalog's model: products, plans of phases, price lists and the rules that decide
plan changes, cancellations and alignment (matched most specific case first)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import assert_never

from billing_worker.domain.calendar import BillingPeriod, add_months

DEFAULT_PRICE_LIST = "default"
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
SESSION_POLICIES = ("deny_new", "evict_oldest")


class Category(StrEnum):
    BASE = "base"
    ADD_ON = "add_on"
    STANDALONE = "standalone"


class PhaseType(StrEnum):
    TRIAL = "trial"
    DISCOUNT = "discount"
    FIXED_TERM = "fixed_term"
    EVERGREEN = "evergreen"


class DurationUnit(StrEnum):
    DAYS = "days"
    WEEKS = "weeks"
    MONTHS = "months"
    YEARS = "years"
    UNLIMITED = "unlimited"


class BillingMode(StrEnum):
    IN_ADVANCE = "in_advance"
    IN_ARREAR = "in_arrear"


class UsageKind(StrEnum):
    #: Units used up during the period, charged by blocks in tiers.
    CONSUMABLE = "consumable"
    #: The period's peak level picks one tier's price.
    CAPACITY = "capacity"


class ChangePolicy(StrEnum):
    IMMEDIATE = "immediate"
    END_OF_TERM = "end_of_term"


class BillingAlignment(StrEnum):
    #: Periods end on the account's billing cycle day; the first one is prorated.
    ACCOUNT = "account"
    #: Periods start on the subscription's first billed day (its anniversary).
    SUBSCRIPTION = "subscription"


class PhaseAlignment(StrEnum):
    #: After a plan change the new plan's phases are timed from the subscription's start.
    KEEP = "keep"
    #: After a plan change the new plan's phases start at the change.
    RESTART = "restart"


@dataclass(frozen=True, slots=True)
class Duration:
    unit: DurationUnit
    number: int = 0

    def after(self, start: date) -> date | None:
        """The first day after a phase of this length that starts on ``start``."""
        match self.unit:
            case DurationUnit.DAYS:
                return start + timedelta(days=self.number)
            case DurationUnit.WEEKS:
                return start + timedelta(weeks=self.number)
            case DurationUnit.MONTHS:
                return add_months(start, self.number)
            case DurationUnit.YEARS:
                return add_months(start, 12 * self.number)
            case DurationUnit.UNLIMITED:
                return None
            case _:
                assert_never(self.unit)


Prices = Mapping[str, Decimal]


@dataclass(frozen=True, slots=True)
class Tier:
    """One usage tier.

    Consumable: ``size`` units make a block charged ``price``; the tier holds at most
    ``max_blocks`` blocks (None: unlimited). Capacity: the tier applies up to ``max_units``
    (None: unlimited) and costs ``price`` for the period.
    """

    price: Prices
    size: int = 1
    max_blocks: int | None = None
    max_units: int | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    name: str
    kind: UsageKind
    billing_period: BillingPeriod
    tiers: tuple[Tier, ...]


@dataclass(frozen=True, slots=True)
class Phase:
    type: PhaseType
    duration: Duration
    fixed: Prices | None = None
    recurring: Prices | None = None
    usages: tuple[Usage, ...] = ()


@dataclass(frozen=True, slots=True)
class Entitlement:
    """What a plan lets its users do, published to the gateways."""

    features: tuple[str, ...] = ()
    seat_limit: int | None = None
    session_policy: str = "deny_new"


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    product: str
    billing_period: BillingPeriod
    phases: tuple[Phase, ...]
    billing_mode: BillingMode
    #: The recurring price is per seat and the subscription's quantity is its seat limit.
    per_seat: bool = False
    entitlement: Entitlement = field(default_factory=Entitlement)
    #: The tenant's dunning policy (by name) for accounts on this plan, if not the default.
    dunning_policy: str | None = None

    def phase(self, phase_type: PhaseType) -> Phase:
        for phase in self.phases:
            if phase.type is phase_type:
                return phase
        raise KeyError(f"plan {self.name} has no {phase_type} phase")


@dataclass(frozen=True, slots=True)
class Product:
    name: str
    category: Category
    #: Add-ons that come with this base product at no charge.
    included: tuple[str, ...] = ()
    #: Add-ons that can be bought for this base product.
    available: tuple[str, ...] = ()
    #: An add-on's maximum number of subscriptions per base subscription (None: no limit).
    max_per_bundle: int | None = None


@dataclass(frozen=True, slots=True)
class PhasePrice:
    fixed: Prices | None = None
    recurring: Prices | None = None


TRANSITION_KEYS = ("phase_type", "from_product", "to_product", "from_billing_period",
                    "to_billing_period", "from_price_list", "to_price_list")  # fmt: skip


@dataclass(frozen=True, slots=True)
class ChangeCase:
    policy: ChangePolicy
    phase_type: PhaseType | None = None
    from_product: str | None = None
    to_product: str | None = None
    from_billing_period: BillingPeriod | None = None
    to_billing_period: BillingPeriod | None = None
    from_price_list: str | None = None
    to_price_list: str | None = None


@dataclass(frozen=True, slots=True)
class PhaseAlignmentCase:
    """How a plan change matching the case aligns the new plan's phases."""

    alignment: PhaseAlignment
    phase_type: PhaseType | None = None
    from_product: str | None = None
    to_product: str | None = None
    from_billing_period: BillingPeriod | None = None
    to_billing_period: BillingPeriod | None = None
    from_price_list: str | None = None
    to_price_list: str | None = None


@dataclass(frozen=True, slots=True)
class CancelCase:
    policy: ChangePolicy
    phase_type: PhaseType | None = None
    product: str | None = None


@dataclass(frozen=True, slots=True)
class AlignmentCase:
    alignment: BillingAlignment
    billing_period: BillingPeriod | None = None
    product: str | None = None


@dataclass(frozen=True, slots=True)
class Rules:
    change: tuple[ChangeCase, ...] = ()
    cancel: tuple[CancelCase, ...] = ()
    billing_alignment: tuple[AlignmentCase, ...] = ()
    #: The alignment when no case matches.
    phase_alignment: PhaseAlignment = PhaseAlignment.KEEP
    phase_alignment_cases: tuple[PhaseAlignmentCase, ...] = ()


@dataclass(frozen=True, slots=True)
class Catalog:
    effective_date: date
    currencies: tuple[str, ...]
    products: Mapping[str, Product]
    plans: Mapping[str, Plan]
    #: name -> plan -> phase type -> prices replacing the plan's own.
    price_lists: Mapping[str, Mapping[str, Mapping[PhaseType, PhasePrice]]]
    rules: Rules

    def plan(self, name: str) -> Plan:
        try:
            return self.plans[name]
        except KeyError:
            raise KeyError(f"the catalog has no plan {name!r}") from None

    def product_of(self, plan: str) -> Product:
        return self.products[self.plan(plan).product]

    def priced_in(self, plan: str, currency: str) -> bool:
        """Whether every price of ``plan`` has an amount in ``currency``."""
        for phase in self.plan(plan).phases:
            for prices in (phase.fixed, phase.recurring):
                if prices is not None and currency not in prices:
                    return False
            for usage in phase.usages:
                if any(currency not in tier.price for tier in usage.tiers):
                    return False
        return True

    def has_price_list(self, name: str) -> bool:
        return name == DEFAULT_PRICE_LIST or name in self.price_lists

    def prices(self, plan: str, phase: PhaseType, price_list: str) -> PhasePrice:
        """A phase's fixed and recurring prices on a price list (default prices if unlisted)."""
        own = self.plan(plan).phase(phase)
        override = self.price_lists.get(price_list, {}).get(plan, {}).get(phase)
        if override is None:
            return PhasePrice(fixed=own.fixed, recurring=own.recurring)
        return PhasePrice(
            fixed=override.fixed if override.fixed is not None else own.fixed,
            recurring=override.recurring if override.recurring is not None else own.recurring,
        )

    def change_policy(
        self,
        *,
        from_plan: str,
        to_plan: str,
        from_price_list: str,
        to_price_list: str,
        phase_type: PhaseType,
    ) -> ChangePolicy:
        """The first matching change rule's policy; IMMEDIATE when none matches."""
        change = (self.plan(from_plan), self.plan(to_plan), from_price_list, to_price_list,
                  phase_type)  # fmt: skip
        for case in self.rules.change:
            if _transition(case, *change):
                return case.policy
        return ChangePolicy.IMMEDIATE

    def phase_alignment(
        self,
        *,
        from_plan: str,
        to_plan: str,
        from_price_list: str,
        to_price_list: str,
        phase_type: PhaseType,
    ) -> PhaseAlignment:
        """How a change aligns the new plan's phases: the first matching case's
        alignment, else the catalog's default (e.g. changing to a rescue price list
        restarts the phases while other changes keep the subscription's clock)."""
        change = (self.plan(from_plan), self.plan(to_plan), from_price_list, to_price_list,
                  phase_type)  # fmt: skip
        for case in self.rules.phase_alignment_cases:
            if _transition(case, *change):
                return case.alignment
        return self.rules.phase_alignment

    def cancel_policy(self, *, plan: str, phase_type: PhaseType) -> ChangePolicy:
        """The first matching cancel rule's policy; END_OF_TERM when none matches."""
        product = self.plan(plan).product
        for case in self.rules.cancel:
            if _match(case.phase_type, phase_type) and _match(case.product, product):
                return case.policy
        return ChangePolicy.END_OF_TERM

    def billing_alignment(self, plan: str) -> BillingAlignment:
        """The first matching alignment rule; ACCOUNT when none matches."""
        p = self.plan(plan)
        for case in self.rules.billing_alignment:
            if _match(case.billing_period, p.billing_period) and _match(case.product, p.product):
                return case.alignment
        return BillingAlignment.ACCOUNT


def _match(wanted: object | None, actual: object) -> bool:
    return wanted is None or wanted == actual


def _transition(
    case: ChangeCase | PhaseAlignmentCase,
    old: Plan,
    new: Plan,
    from_price_list: str,
    to_price_list: str,
    phase_type: PhaseType,
) -> bool:
    """Whether a plan change matches a rule's case (an unset key matches anything)."""
    return (
        _match(case.phase_type, phase_type)
        and _match(case.from_product, old.product)
        and _match(case.to_product, new.product)
        and _match(case.from_billing_period, old.billing_period)
        and _match(case.to_billing_period, new.billing_period)
        and _match(case.from_price_list, from_price_list)
        and _match(case.to_price_list, to_price_list)
    )
