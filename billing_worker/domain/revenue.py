"""Monthly recurring revenue: what a subscription's recurring price comes to per month on a
given day, for the console's MRR by plan. A metric, not an invoice: each subscription's
amount is rounded to the currency's minor unit once."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from billing_worker.domain.calendar import BillingPeriod
from billing_worker.domain.subscriptions import CatalogAt, Segment, Terms, billing_segments
from shared.money import Money

#: How many of a billing period make a month.
_PER_MONTH = {
    BillingPeriod.DAILY: Decimal(365) / Decimal(12),
    BillingPeriod.WEEKLY: Decimal(52) / Decimal(12),
    BillingPeriod.MONTHLY: Decimal(1),
    BillingPeriod.QUARTERLY: Decimal(1) / Decimal(3),
    BillingPeriod.ANNUAL: Decimal(1) / Decimal(12),
}


def segment_on(terms: Terms, catalog_at: CatalogAt, day: date) -> Segment | None:
    """What is billed on ``day`` (None outside billing or during a pause)."""
    for segment in billing_segments(terms, catalog_at):
        if day in segment.span:
            return segment
    return None


def monthly_amount(segment: Segment, catalog_at: CatalogAt, currency: str) -> Money:
    """The segment's recurring price per month, seats included (zero: no recurring price
    in this currency, or a free phase)."""
    catalog = catalog_at(segment.catalog_date)
    plan = catalog.plan(segment.plan)
    recurring = segment.prices(catalog, segment.price_list, currency).recurring
    per_month = _PER_MONTH.get(plan.billing_period)
    if not recurring or currency not in recurring or per_month is None:
        return Money.zero(currency)
    seats = segment.quantity if plan.per_seat else 1
    return (Money(recurring[currency], currency) * seats * per_month).quantize()
