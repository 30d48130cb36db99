"""A tenant's catalog: products, plans of phases, price lists and rules.

The catalog is a document (YAML or JSON, parsed by the caller into plain dicts and lists)
read whole by :func:`parse_catalog` (``reading``, ``rules``; field checks in ``fields``):
every problem is reported with the path to the field that has it, and an invalid document
yields no catalog at all. The model it builds is ``model``.
"""

from billing_worker.domain.catalog.fields import CatalogError, Problem
from billing_worker.domain.catalog.model import (
    DEFAULT_PRICE_LIST,
    NAME,
    SESSION_POLICIES,
    TRANSITION_KEYS,
    AlignmentCase,
    BillingAlignment,
    BillingMode,
    CancelCase,
    Catalog,
    Category,
    ChangeCase,
    ChangePolicy,
    Duration,
    DurationUnit,
    Entitlement,
    Phase,
    PhaseAlignment,
    PhaseAlignmentCase,
    PhasePrice,
    PhaseType,
    Plan,
    Prices,
    Product,
    Rules,
    Tier,
    Usage,
    UsageKind,
)
from billing_worker.domain.catalog.reading import parse_catalog

__all__ = [
    "DEFAULT_PRICE_LIST",
    "NAME",
    "SESSION_POLICIES",
    "TRANSITION_KEYS",
    "AlignmentCase",
    "BillingAlignment",
    "BillingMode",
    "CancelCase",
    "Catalog",
    "CatalogError",
    "Category",
    "ChangeCase",
    "ChangePolicy",
    "Duration",
    "DurationUnit",
    "Entitlement",
    "Phase",
    "PhaseAlignment",
    "PhaseAlignmentCase",
    "PhasePrice",
    "PhaseType",
    "Plan",
    "Prices",
    "Problem",
    "Product",
    "Rules",
    "Tier",
    "Usage",
    "UsageKind",
    "parse_catalog",
]
