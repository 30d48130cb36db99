"""A tenant's catalog: products, plans of phases, price lists and rules.

The catalog is a document (YAML or JSON, parsed by the caller into plain dicts and lists)
validated whole by :func:`parse_catalog`: every problem is reported with the path to the
field that has it, and an invalid document yields no catalog at all. The format is
documented in ``docs/catalog.md``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import partial
from typing import Any, TypeVar

from billing_worker.domain.calendar import BillingPeriod, add_months
from shared.money import Money, MoneyError, is_currency

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


_TRANSITION_KEYS = ("phase_type", "from_product", "to_product", "from_billing_period",
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


# -- validation ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class CatalogError(ValueError):
    """The document is not a valid catalog; ``problems`` names each field and why."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems[:5]))


E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


class _Reader:
    """Walks the document, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def mapping(self, value: object, path: str, *, required: bool = True) -> Mapping[str, Any]:
        if value is None and not required:
            return {}
        if not isinstance(value, Mapping):
            self.fail(path, "must be a mapping" if value is not None else "is required")
            return {}
        return value

    def sequence(self, value: object, path: str) -> Sequence[Any]:
        if value is None:
            return ()
        if isinstance(value, str) or not isinstance(value, Sequence):
            self.fail(path, "must be a list")
            return ()
        return value

    def known_keys(self, node: Mapping[str, Any], path: str, allowed: Iterable[str]) -> None:
        allowed = set(allowed)
        for key in node:
            if key not in allowed:
                self.fail(
                    f"{path}.{key}",
                    f"is not a known field (expected one of: {', '.join(sorted(allowed))})",
                )

    def enum(self, kind: type[E], value: object, path: str, *, required: bool = True) -> E | None:
        if value is None:
            if required:
                self.fail(path, "is required")
            return None
        if isinstance(value, str) and value in kind._value2member_map_:
            return kind(value)
        choices = ", ".join(m.value for m in kind)
        self.fail(path, f"{value!r} is not one of: {choices}")
        return None

    def name(self, value: object, path: str) -> str | None:
        if not isinstance(value, str) or not NAME.match(value):
            self.fail(path, "must be a name of lowercase letters, digits, '_', '-' or '.'")
            return None
        return value

    def integer(self, value: object, path: str, *, minimum: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, "must be a whole number")
            return None
        if value < minimum:
            self.fail(path, f"must be at least {minimum}")
            return None
        return value

    def prices(self, value: object, path: str, currencies: Sequence[str]) -> Prices | None:
        if value is None:
            return None
        node = self.mapping(value, path)
        prices: dict[str, Decimal] = {}
        for currency, amount in node.items():
            where = f"{path}.{currency}"
            if currency not in currencies:
                self.fail(where, f"{currency!r} is not one of the catalog's currencies")
                continue
            if isinstance(amount, float):
                self.fail(where, 'write the amount as a string or integer, e.g. "9.99"')
                continue
            try:
                money = Money.parse(str(amount), currency)
            except (MoneyError, InvalidOperation) as exc:
                self.fail(where, str(exc))
                continue
            if money.amount < 0:
                self.fail(where, "must not be negative")
                continue
            prices[currency] = money.amount
        return prices

    def each(
        self, value: object, path: str, read: Callable[[Mapping[str, Any], str], T | None]
    ) -> list[T]:
        out: list[T] = []
        for i, item in enumerate(self.sequence(value, path)):
            where = f"{path}[{i}]"
            parsed = read(self.mapping(item, where), where)
            if parsed is not None:
                out.append(parsed)
        return out


def parse_catalog(doc: object) -> Catalog:
    """Validate a catalog document and build the catalog.

    Raises:
        CatalogError: listing every problem found, each with its path.
    """
    r = _Reader()
    if not isinstance(doc, Mapping):
        raise CatalogError([Problem("catalog", "must be a mapping")])
    root: Mapping[str, Any] = doc
    r.known_keys(
        root,
        "catalog",
        (
            "effective_date",
            "currencies",
            "billing_mode",
            "products",
            "plans",
            "price_lists",
            "rules",
        ),
    )
    effective = _date(r, root.get("effective_date"), "effective_date")
    currencies = tuple(r.sequence(root.get("currencies"), "currencies"))
    if not currencies:
        r.fail("currencies", "list at least one ISO 4217 currency code")
    for i, code in enumerate(currencies):
        if not is_currency(code):
            r.fail(f"currencies[{i}]", f"{code!r} is not an ISO 4217 currency code")
    mode = r.enum(BillingMode, root.get("billing_mode", "in_advance"), "billing_mode")
    products = _products(r, root.get("products"))
    plans = _plans(r, root.get("plans"), products, currencies, mode or BillingMode.IN_ADVANCE)
    declared = root.get("plans")
    refused = set(declared) - set(plans) if isinstance(declared, Mapping) else set()
    price_lists = _price_lists(r, root.get("price_lists"), plans, refused, currencies)
    rules = _rules(r, root.get("rules"), products, price_lists)
    if r.problems or effective is None:
        raise CatalogError(r.problems)
    return Catalog(
        effective_date=effective,
        currencies=currencies,
        products=products,
        plans=plans,
        price_lists=price_lists,
        rules=rules,
    )


def _date(r: _Reader, value: object, path: str) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    r.fail(path, "must be a date such as 2027-01-01")
    return None


def _products(r: _Reader, value: object) -> dict[str, Product]:
    node = r.mapping(value, "products")
    if not node:
        r.fail("products", "define at least one product")
    products: dict[str, Product] = {}
    for key, body in node.items():
        path = f"products.{key}"
        name = r.name(key, path)
        spec = r.mapping(body, path)
        r.known_keys(spec, path, ("category", "included", "available", "max_per_bundle"))
        category = r.enum(Category, spec.get("category"), f"{path}.category")
        limit = spec.get("max_per_bundle")
        if limit is not None:
            limit = r.integer(limit, f"{path}.max_per_bundle", minimum=1)
        if name and category:
            products[name] = Product(
                name=name,
                category=category,
                included=tuple(r.sequence(spec.get("included"), f"{path}.included")),
                available=tuple(r.sequence(spec.get("available"), f"{path}.available")),
                max_per_bundle=limit,
            )
    for product in products.values():
        for kind in ("included", "available"):
            for i, add_on in enumerate(getattr(product, kind)):
                where = f"products.{product.name}.{kind}[{i}]"
                target = products.get(add_on) if isinstance(add_on, str) else None
                if target is None:
                    r.fail(where, f"{add_on!r} is not a product of this catalog")
                elif target.category is not Category.ADD_ON:
                    r.fail(where, f"{add_on!r} is a {target.category} product, not an add-on")
        if (product.included or product.available) and product.category is not Category.BASE:
            r.fail(f"products.{product.name}", "only base products have add-ons")
    return products


def _duration(r: _Reader, value: object, path: str) -> Duration | None:
    if value in (None, "unlimited"):
        return Duration(DurationUnit.UNLIMITED)
    spec = r.mapping(value, path)
    r.known_keys(spec, path, ("unit", "number"))
    unit = r.enum(DurationUnit, spec.get("unit"), f"{path}.unit")
    if unit is DurationUnit.UNLIMITED:
        return Duration(unit)
    number = r.integer(spec.get("number"), f"{path}.number", minimum=1)
    if unit is None or number is None:
        return None
    return Duration(unit, number)


def _tier(
    r: _Reader, spec: Mapping[str, Any], path: str, kind: UsageKind, currencies: Sequence[str]
) -> Tier | None:
    r.known_keys(spec, path, ("price", "size", "max_blocks", "max_units"))
    price = r.prices(spec.get("price"), f"{path}.price", currencies)
    if spec.get("price") is None:
        r.fail(f"{path}.price", "is required")
    if kind is UsageKind.CONSUMABLE:
        size = r.integer(spec.get("size", 1), f"{path}.size", minimum=1)
        max_blocks = spec.get("max_blocks")
        if max_blocks is not None:
            max_blocks = r.integer(max_blocks, f"{path}.max_blocks", minimum=1)
        if "max_units" in spec:
            r.fail(
                f"{path}.max_units",
                "applies to capacity usage; consumable tiers use size and max_blocks",
            )
        if price is None or size is None:
            return None
        return Tier(price=price, size=size, max_blocks=max_blocks)
    max_units = spec.get("max_units")
    if max_units is not None:
        max_units = r.integer(max_units, f"{path}.max_units", minimum=1)
    if price is None:
        return None
    return Tier(price=price, max_units=max_units)


def _usage(
    r: _Reader,
    spec: Mapping[str, Any],
    path: str,
    period: BillingPeriod | None,
    currencies: Sequence[str],
) -> Usage | None:
    r.known_keys(spec, path, ("name", "kind", "billing_period", "tiers"))
    name = r.name(spec.get("name"), f"{path}.name")
    kind = r.enum(UsageKind, spec.get("kind"), f"{path}.kind")
    default_period = BillingPeriod.MONTHLY
    if period is not None and period is not BillingPeriod.NONE:
        default_period = period
    usage_period = r.enum(
        BillingPeriod, spec.get("billing_period", default_period.value), f"{path}.billing_period"
    )
    if usage_period is BillingPeriod.NONE:
        r.fail(f"{path}.billing_period", "usage is billed per period; 'none' is not allowed")
    if kind is None or name is None or usage_period is None:
        return None
    tiers = r.each(
        spec.get("tiers"), f"{path}.tiers", lambda s, p: _tier(r, s, p, kind, currencies)
    )
    if not tiers:
        r.fail(f"{path}.tiers", "define at least one tier")
    for i, tier in enumerate(tiers[:-1]):
        if (tier.max_blocks if kind is UsageKind.CONSUMABLE else tier.max_units) is None:
            r.fail(f"{path}.tiers[{i}]", "only the last tier may be unlimited")
    return Usage(name=name, kind=kind, billing_period=usage_period, tiers=tuple(tiers))


def _phase(
    r: _Reader,
    spec: Mapping[str, Any],
    path: str,
    period: BillingPeriod | None,
    currencies: Sequence[str],
) -> Phase | None:
    """One phase; ``period`` is the plan's (None when the plan's own is unreadable, which is
    reported there, so nothing that depends on it is reported again)."""
    r.known_keys(spec, path, ("type", "duration", "fixed", "recurring", "usages"))
    phase_type = r.enum(PhaseType, spec.get("type"), f"{path}.type")
    duration = _duration(r, spec.get("duration"), f"{path}.duration")
    fixed = r.prices(spec.get("fixed"), f"{path}.fixed", currencies)
    recurring = r.prices(spec.get("recurring"), f"{path}.recurring", currencies)
    if recurring is not None and period is BillingPeriod.NONE:
        r.fail(f"{path}.recurring", "the plan's billing_period is 'none': no recurring price")
    usages = r.each(
        spec.get("usages"), f"{path}.usages", lambda s, p: _usage(r, s, p, period, currencies)
    )
    if phase_type is None or duration is None:
        return None
    return Phase(
        type=phase_type, duration=duration, fixed=fixed, recurring=recurring, usages=tuple(usages)
    )


def _entitlement(r: _Reader, value: object, path: str) -> Entitlement:
    spec = r.mapping(value, path, required=False)
    r.known_keys(spec, path, ("features", "seat_limit", "session_policy"))
    features = r.sequence(spec.get("features"), f"{path}.features")
    for i, feature in enumerate(features):
        if not isinstance(feature, str) or not feature:
            r.fail(f"{path}.features[{i}]", "must be a non-empty string")
    seat_limit = spec.get("seat_limit")
    if seat_limit is not None:
        seat_limit = r.integer(seat_limit, f"{path}.seat_limit", minimum=1)
    policy = spec.get("session_policy", "deny_new")
    if policy not in SESSION_POLICIES:
        r.fail(f"{path}.session_policy", f"{policy!r} is not one of: {', '.join(SESSION_POLICIES)}")
    return Entitlement(
        features=tuple(str(f) for f in features), seat_limit=seat_limit, session_policy=str(policy)
    )


def _plans(
    r: _Reader,
    value: object,
    products: Mapping[str, Product],
    currencies: Sequence[str],
    mode: BillingMode,
) -> dict[str, Plan]:
    node = r.mapping(value, "plans")
    plans: dict[str, Plan] = {}
    for key, body in node.items():
        path = f"plans.{key}"
        name = r.name(key, path)
        spec = r.mapping(body, path)
        r.known_keys(
            spec,
            path,
            (
                "product",
                "billing_period",
                "billing_mode",
                "phases",
                "per_seat",
                "entitlement",
                "dunning_policy",
            ),
        )
        product = spec.get("product")
        if product not in products:
            r.fail(f"{path}.product", f"{product!r} is not a product of this catalog")
        period = r.enum(BillingPeriod, spec.get("billing_period"), f"{path}.billing_period")
        plan_mode = r.enum(
            BillingMode, spec.get("billing_mode", mode.value), f"{path}.billing_mode"
        )
        per_seat = spec.get("per_seat", False)
        if not isinstance(per_seat, bool):
            r.fail(f"{path}.per_seat", "must be true or false")
        phases = r.each(
            spec.get("phases"),
            f"{path}.phases",
            partial(_phase, r, period=period, currencies=currencies),
        )
        _check_phases(r, phases, f"{path}.phases")
        entitlement = _entitlement(r, spec.get("entitlement"), f"{path}.entitlement")
        dunning = spec.get("dunning_policy")
        if dunning is not None and (not isinstance(dunning, str) or not dunning):
            r.fail(f"{path}.dunning_policy", "must be the name of one of the tenant's policies")
        if name and period and plan_mode and product in products and phases:
            plans[name] = Plan(
                name=name,
                product=str(product),
                billing_period=period,
                phases=tuple(phases),
                billing_mode=plan_mode,
                per_seat=bool(per_seat),
                entitlement=entitlement,
                dunning_policy=dunning if isinstance(dunning, str) else None,
            )
    if not node:
        r.fail("plans", "define at least one plan")
    return plans


def _check_phases(r: _Reader, phases: Sequence[Phase], path: str) -> None:
    if not phases:
        r.fail(path, "a plan has at least one phase")
        return
    seen: set[PhaseType] = set()
    for i, phase in enumerate(phases):
        if phase.type in seen:
            r.fail(f"{path}[{i}].type", f"the plan already has a {phase.type} phase")
        seen.add(phase.type)
        last = i == len(phases) - 1
        unlimited = phase.duration.unit is DurationUnit.UNLIMITED
        if unlimited and not last:
            r.fail(f"{path}[{i}].duration", "only the last phase may be unlimited")
        if phase.type is PhaseType.EVERGREEN and not last:
            r.fail(f"{path}[{i}].type", "the evergreen phase must come last")
        if last and phase.type is PhaseType.EVERGREEN and not unlimited:
            r.fail(f"{path}[{i}].duration", "an evergreen phase is unlimited")


def _price_lists(
    r: _Reader,
    value: object,
    plans: Mapping[str, Plan],
    refused: set[object],
    currencies: Sequence[str],
) -> dict[str, dict[str, dict[PhaseType, PhasePrice]]]:
    """The price lists; ``refused`` names plans the document has but that were refused
    (their problems are reported already, so a list that prices them is not faulted too)."""
    node = r.mapping(value, "price_lists", required=False)
    out: dict[str, dict[str, dict[PhaseType, PhasePrice]]] = {}
    for list_name, body in node.items():
        path = f"price_lists.{list_name}"
        name = r.name(list_name, path)
        if name == DEFAULT_PRICE_LIST:
            r.fail(
                path, "the default price list is the plans' own prices; name this one differently"
            )
        overrides: dict[str, dict[PhaseType, PhasePrice]] = {}
        for plan_name, phases in r.mapping(body, path).items():
            plan_path = f"{path}.{plan_name}"
            plan = plans.get(plan_name)
            if plan is None:
                if plan_name not in refused:
                    r.fail(plan_path, f"{plan_name!r} is not a plan of this catalog")
                continue
            by_phase: dict[PhaseType, PhasePrice] = {}
            for phase_name, prices in r.mapping(phases, plan_path).items():
                phase_path = f"{plan_path}.{phase_name}"
                phase_type = r.enum(PhaseType, phase_name, phase_path)
                if phase_type is None:
                    continue
                if phase_type not in {p.type for p in plan.phases}:
                    r.fail(phase_path, f"plan {plan_name!r} has no {phase_type} phase")
                    continue
                spec = r.mapping(prices, phase_path)
                r.known_keys(spec, phase_path, ("fixed", "recurring"))
                by_phase[phase_type] = PhasePrice(
                    fixed=r.prices(spec.get("fixed"), f"{phase_path}.fixed", currencies),
                    recurring=r.prices(
                        spec.get("recurring"), f"{phase_path}.recurring", currencies
                    ),
                )
            overrides[plan_name] = by_phase
        if name:
            out[name] = overrides
    return out


def _rules(
    r: _Reader, value: object, products: Mapping[str, Product], price_lists: Mapping[str, object]
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
        r.known_keys(s, p, (decision, *_TRANSITION_KEYS))
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
