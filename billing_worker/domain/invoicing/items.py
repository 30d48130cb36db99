"""The items of invoices: what each line is, what proposals and billings carry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from billing_worker.domain.calendar import Span
from billing_worker.domain.catalog import PhaseType
from billing_worker.domain.subscriptions import Terms
from shared.money import Money


class ItemKind(StrEnum):
    RECURRING = "recurring"
    FIXED = "fixed"
    USAGE = "usage"
    #: Credit for days an issued recurring item billed that are no longer owed.
    REPAIR = "repair"
    #: Account credit spent on this invoice.
    CREDIT_APPLIED = "credit_applied"
    #: This invoice's surplus of credits, moved to the account's credit.
    CREDIT_GENERATED = "credit_generated"
    #: Credit the tenant gave the account (negative), on an invoice of its own.
    CREDIT = "credit"
    #: A one-off charge the tenant added (an external charge), on an invoice of its own.
    CHARGE = "charge"
    #: An issued item reduced by the tenant (negative), linked to that item.
    ADJUSTMENT = "adjustment"


@dataclass(frozen=True, slots=True)
class Item:
    """One invoice line. Charges are positive, credits negative."""

    kind: ItemKind
    amount: Money
    span: Span
    subscription_id: str | None = None
    #: What was sold, e.g. ``pro-monthly/evergreen/default``: repairs and coverage match on it.
    rate: str = ""
    plan: str | None = None
    phase: PhaseType | None = None
    quantity: int = 1
    #: For a repair, the item it credits.
    linked_to: str | None = None
    #: The day the item became billable (None for repairs and credits: at once).
    bill_on: date | None = None
    #: Set once stored.
    id: str | None = None


@dataclass(frozen=True, slots=True)
class UsageRecord:
    subscription_id: str
    name: str
    day: date
    units: int


@dataclass(frozen=True, slots=True)
class Proposal:
    item: Item
    #: The day the item becomes billable (period start in advance, end in arrear).
    bill_on: date
    #: For recurring items: the whole aligned period and its full price.
    period: Span | None = None
    full: Money | None = None


@dataclass(frozen=True, slots=True)
class Billing:
    """How one subscription is billed on its bill-to account."""

    terms: Terms
    #: Price list replacing the subscription's own (a reseller's wholesale list), if any.
    price_list: str | None = None
