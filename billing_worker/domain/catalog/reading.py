"""Reading a catalog document: every section validated, every problem reported with the
path to the field that has it, and a :class:`Catalog` only when there is none. The format
is documented in ``docs/catalog.md``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from functools import partial
from typing import Any

from billing_worker.domain.calendar import BillingPeriod
from billing_worker.domain.catalog.fields import CatalogError, FieldReader, Problem
from billing_worker.domain.catalog.model import (
    DEFAULT_PRICE_LIST,
    SESSION_POLICIES,
    BillingMode,
    Catalog,
    Category,
    Duration,
    DurationUnit,
    Entitlement,
    Phase,
    PhasePrice,
    PhaseType,
    Plan,
    Product,
    Tier,
    Usage,
    UsageKind,
)
from billing_worker.domain.catalog.rules import read_rules
from shared.money import is_currency


def parse_catalog(doc: object) -> Catalog:
    """Validate a catalog document and build the catalog.

    Raises:
        CatalogError: listing every problem found, each with its path.
    """
    r = FieldReader()
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
    rules = read_rules(r, root.get("rules"), products, price_lists)
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


def _date(r: FieldReader, value: object, path: str) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    r.fail(path, "must be a date such as 2027-01-01")
    return None


def _products(r: FieldReader, value: object) -> dict[str, Product]:
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


def _duration(r: FieldReader, value: object, path: str) -> Duration | None:
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
    r: FieldReader, spec: Mapping[str, Any], path: str, kind: UsageKind, currencies: Sequence[str]
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
    r: FieldReader,
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
    r: FieldReader,
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


def _entitlement(r: FieldReader, value: object, path: str) -> Entitlement:
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
    r: FieldReader,
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


def _check_phases(r: FieldReader, phases: Sequence[Phase], path: str) -> None:
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
    r: FieldReader,
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
