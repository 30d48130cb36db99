"""Catalog validation: an invalid document is rejected whole, each problem named by path."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from billing_worker.domain.calendar import BillingPeriod
from billing_worker.domain.catalog import (
    BillingAlignment,
    CatalogError,
    ChangePolicy,
    PhaseType,
    parse_catalog,
)
from tests.unit.billing.catalog_fixture import CATALOG, DOCUMENT


def problems_of(doc: Any) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(doc)
    return [str(p) for p in caught.value.problems]


def test_the_fixture_catalog_reads_back_what_it_says() -> None:
    plan = CATALOG.plan("pro-trial")
    assert [p.type for p in plan.phases] == [PhaseType.TRIAL, PhaseType.EVERGREEN]
    assert plan.billing_period is BillingPeriod.MONTHLY
    assert CATALOG.prices("pro-monthly", PhaseType.EVERGREEN, "wholesale").recurring == {
        "USD": Decimal("24.80"),
        "JPY": Decimal("2480"),
    }
    # A plan a price list does not mention keeps its own prices on that list.
    assert CATALOG.prices("pro-annual", PhaseType.EVERGREEN, "wholesale").recurring == {
        "USD": Decimal("365.00"),
        "JPY": Decimal("36500"),
    }


def test_rules_pick_the_first_matching_case() -> None:
    assert (
        CATALOG.change_policy(
            from_plan="pro-annual",
            to_plan="pro-monthly",
            from_price_list="default",
            to_price_list="default",
            phase_type=PhaseType.EVERGREEN,
        )
        is ChangePolicy.END_OF_TERM
    )
    assert (
        CATALOG.change_policy(
            from_plan="pro-monthly",
            to_plan="pro-annual",
            from_price_list="default",
            to_price_list="default",
            phase_type=PhaseType.EVERGREEN,
        )
        is ChangePolicy.IMMEDIATE
    )
    assert CATALOG.cancel_policy(plan="pro-trial", phase_type=PhaseType.TRIAL) is (
        ChangePolicy.IMMEDIATE
    )
    assert CATALOG.cancel_policy(plan="pro-trial", phase_type=PhaseType.EVERGREEN) is (
        ChangePolicy.END_OF_TERM
    )
    assert CATALOG.billing_alignment("pro-monthly") is BillingAlignment.ACCOUNT


def broken(path: list[str | int], value: object) -> dict[str, Any]:
    doc = copy.deepcopy(DOCUMENT)
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            ["currencies"],
            ["USD", "JPY", "XXQ"],
            "currencies[2]: 'XXQ' is not an ISO 4217 currency code",
        ),
        (
            ["plans", "pro-monthly", "phases", 0, "recurring", "USD"],
            "31.001",
            "plans.pro-monthly.phases[0].recurring.USD: USD amounts have 2 decimal places",
        ),
        (
            ["plans", "pro-monthly", "phases", 0, "recurring", "USD"],
            31.0,
            "plans.pro-monthly.phases[0].recurring.USD: write the amount as a string",
        ),
        (
            ["plans", "pro-monthly", "billing_period"],
            "fortnightly",
            "plans.pro-monthly.billing_period: 'fortnightly' is not one of: daily, weekly",
        ),
        (["plans", "pro-monthly", "product"], "gold", "plans.pro-monthly.product: 'gold' is not"),
        (
            ["plans", "pro-trial", "phases", 0, "duration"],
            "unlimited",
            "plans.pro-trial.phases[0].duration: only the last phase may be unlimited",
        ),
        (
            ["products", "pro", "available"],
            ["basic"],
            "products.pro.available[0]: 'basic' is a base product, not an add-on",
        ),
        (
            ["price_lists", "wholesale", "pro-monthly", "trial"],
            {"recurring": {"USD": "1.00", "JPY": 100}},
            "price_lists.wholesale.pro-monthly.trial: plan 'pro-monthly' has no trial phase",
        ),
        (
            ["rules", "change", 0, "policy"],
            "whenever",
            "rules.change[0].policy: 'whenever' is not one of: immediate, end_of_term",
        ),
        (
            ["plans", "pro-monthly", "colour"],
            "red",
            "plans.pro-monthly.colour: is not a known field",
        ),
        (["effective_date"], "next tuesday", "effective_date: must be a date"),
    ],
)
def test_each_problem_names_its_path(path: list[str | int], value: object, expected: str) -> None:
    found = problems_of(broken(path, value))
    assert any(p.startswith(expected) for p in found), found
    assert len(found) == 1, f"one mistake, one problem: {found}"


def test_every_problem_is_reported_at_once() -> None:
    doc = broken(["currencies"], [])
    doc["plans"]["basic-monthly"]["billing_period"] = "sometimes"
    found = problems_of(doc)
    assert any(p.startswith("currencies:") for p in found)
    assert any(p.startswith("plans.basic-monthly.billing_period:") for p in found)


def test_a_document_that_is_not_a_mapping_is_rejected() -> None:
    assert problems_of(["plans"]) == ["catalog: must be a mapping"]
