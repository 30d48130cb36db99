"""A catalog used by the domain tests: one of each feature, prices chosen to make the
arithmetic easy to check by hand (31.00 for a 31-day month is 1.00 a day)."""

from __future__ import annotations

from datetime import date

from billing_worker.domain.catalog import Catalog, parse_catalog

DOCUMENT: dict[str, object] = {
    "effective_date": "2027-01-01",
    "currencies": ["USD", "JPY"],
    "products": {
        "pro": {"category": "base", "available": ["storage"], "included": ["support"]},
        "basic": {"category": "base"},
        "storage": {"category": "add_on", "max_per_bundle": 1},
        "support": {"category": "add_on"},
    },
    "plans": {
        "pro-monthly": {
            "product": "pro",
            "billing_period": "monthly",
            "entitlement": {"features": ["reports"], "seat_limit": 5},
            "phases": [{"type": "evergreen", "recurring": {"USD": "31.00", "JPY": 3100}}],
        },
        "pro-trial": {
            "product": "pro",
            "billing_period": "monthly",
            "phases": [
                {"type": "trial", "duration": {"unit": "days", "number": 14}},
                {"type": "evergreen", "recurring": {"USD": "31.00", "JPY": 3100}},
            ],
        },
        "pro-annual": {
            "product": "pro",
            "billing_period": "annual",
            "phases": [{"type": "evergreen", "recurring": {"USD": "365.00", "JPY": 36500}}],
        },
        "basic-monthly": {
            "product": "basic",
            "billing_period": "monthly",
            "billing_mode": "in_arrear",
            "phases": [
                {
                    "type": "evergreen",
                    "fixed": {"USD": "5.00", "JPY": 500},
                    "recurring": {"USD": "10.00", "JPY": 1000},
                    "usages": [
                        {
                            "name": "api-calls",
                            "kind": "consumable",
                            "tiers": [
                                {
                                    "size": 1000,
                                    "max_blocks": 10,
                                    "price": {"USD": "1.00", "JPY": 100},
                                },
                                {"size": 1000, "price": {"USD": "0.50", "JPY": 50}},
                            ],
                        }
                    ],
                }
            ],
        },
        "team-monthly": {
            "product": "pro",
            "billing_period": "monthly",
            "per_seat": True,
            "phases": [{"type": "evergreen", "recurring": {"USD": "10.00", "JPY": 1000}}],
        },
        "storage-monthly": {
            "product": "storage",
            "billing_period": "monthly",
            "phases": [{"type": "evergreen", "recurring": {"USD": "3.10", "JPY": 310}}],
        },
    },
    "price_lists": {
        "wholesale": {"pro-monthly": {"evergreen": {"recurring": {"USD": "24.80", "JPY": 2480}}}},
    },
    "rules": {
        "change": [
            {"phase_type": "trial", "policy": "immediate"},
            {
                "from_billing_period": "annual",
                "to_billing_period": "monthly",
                "policy": "end_of_term",
            },
        ],
        "cancel": [{"phase_type": "trial", "policy": "immediate"}, {"policy": "end_of_term"}],
    },
}

CATALOG: Catalog = parse_catalog(DOCUMENT)


def catalog_at(_day: date) -> Catalog:
    return CATALOG
