"""Proposals: every charge the subscriptions' terms justify up to a day (recurring
periods, fixed fees, usage rated by tier), and the next day anything becomes due."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import assert_never

from billing_worker.domain.calendar import BillingPeriod, Span
from billing_worker.domain.catalog import BillingMode, Catalog, Usage, UsageKind
from billing_worker.domain.invoicing.items import Billing, Item, ItemKind, Proposal, UsageRecord
from billing_worker.domain.proration import prorate
from billing_worker.domain.subscriptions import (
    CatalogAt,
    Segment,
    billing_segments,
    cycle_cuts,
    cycle_for,
    run_anchor,
)
from shared.money import Money


def rate_usage(usage: Usage, currency: str, units: int) -> Money:
    """The charge for ``units`` of ``usage`` in one period."""
    match usage.kind:
        case UsageKind.CAPACITY:
            for tier in usage.tiers:
                if tier.max_units is None or units <= tier.max_units:
                    return Money(tier.price[currency], currency)
            return Money(usage.tiers[-1].price[currency], currency)
        case UsageKind.CONSUMABLE:
            return _consumed(usage, currency, units)
        case _:
            assert_never(usage.kind)


def _consumed(usage: Usage, currency: str, units: int) -> Money:
    """Consumable usage: blocks of each tier's size, tier after tier."""
    total = Money.zero(currency)
    remaining = units
    for tier in usage.tiers:
        room = tier.max_blocks * tier.size if tier.max_blocks is not None else remaining
        used = min(remaining, room)
        blocks = math.ceil(used / tier.size)
        total += Money(tier.price[currency], currency) * blocks
        remaining -= used
        if remaining <= 0:
            break
    return total.quantize()


@dataclass(slots=True)
class _UsageBucket:
    usage: Usage
    segment: Segment
    period: Span
    pieces: list[Span] = field(default_factory=list)


@dataclass(slots=True)
class _Proposer:
    billing: Billing
    catalog_at: CatalogAt
    currency: str
    account_cycle_day: int | None
    until: date
    since: date | None
    usage: Sequence[UsageRecord]
    zero_amounts: bool = True
    out: list[Proposal] = field(default_factory=list)
    next_on: date | None = None

    def later(self, day: date) -> None:
        if self.next_on is None or day < self.next_on:
            self.next_on = day

    def run(self) -> None:
        terms = self.billing.terms
        segments = billing_segments(terms, self.catalog_at)
        buckets: dict[tuple[str, str, Span], _UsageBucket] = {}
        restarts = cycle_cuts(terms)
        for index, segment in enumerate(segments):
            catalog = self.catalog_at(segment.catalog_date)
            price_list = self.billing.price_list or segment.price_list
            anchor = run_anchor(segments, index, self.catalog_at, restarts)
            self._fixed(segment, catalog, price_list)
            self._recurring(segment, catalog, price_list, anchor)
            for usage in catalog.plan(segment.plan).phase(segment.phase).usages:
                cycle = cycle_for(
                    segment,
                    terms,
                    catalog,
                    anchor=anchor,
                    account_cycle_day=self.account_cycle_day,
                    period=usage.billing_period,
                )
                for period in cycle.periods(self._from(segment), segment.span.end):
                    piece = period.intersect(segment.span)
                    if piece is None:
                        continue
                    if piece.start > self.until:
                        break
                    key = (segment.plan, usage.name, period)
                    bucket = buckets.setdefault(key, _UsageBucket(usage, segment, period))
                    bucket.pieces.append(piece)
        for bucket in buckets.values():
            self._usage(bucket)

    def _from(self, segment: Segment) -> date:
        if self.since is None:
            return segment.span.start
        return max(segment.span.start, min(self.since, segment.span.end - timedelta(days=1)))

    def _rate(self, segment: Segment, price_list: str) -> str:
        """What an item's price comes from: a different rate is a different price."""
        rate = f"{segment.plan}/{segment.phase}/{price_list}"
        if (override := segment.override) is not None:  # negotiated: the prices themselves
            fixed, recurring = override.fixed, override.recurring
            rate += f"/={'' if fixed is None else fixed}:{'' if recurring is None else recurring}"
        return rate

    def _fixed(self, segment: Segment, catalog: Catalog, price_list: str) -> None:
        """A phase's fixed fee, on the day the phase starts. A phase with nothing to charge
        up front -- a $0 fixed price, or a free phase with no price at all (a trial) -- gets
        a $0 item that day instead, so an invoice records that the subscription started
        (as Kill Bill and Stripe do), unless ``zero_amounts`` is off."""
        if segment.span.start != segment.phase_start:
            return
        prices = segment.prices(catalog, price_list, self.currency)
        phase = catalog.plan(segment.plan).phase(segment.phase)
        if prices.fixed:
            amount = Money(prices.fixed[self.currency], self.currency)
        elif prices.recurring or phase.usages:
            return
        else:
            amount = Money.zero(self.currency)
        if amount.is_zero() and not self.zero_amounts:
            return
        day = segment.phase_start
        if day > self.until:
            self.later(day)
            return
        if self.since is not None and day < self.since:
            return
        self.out.append(
            Proposal(
                item=Item(
                    kind=ItemKind.FIXED,
                    amount=amount,
                    span=Span(day, day + timedelta(days=1)),
                    subscription_id=self.billing.terms.id,
                    rate=f"{self._rate(segment, price_list)}/{day.isoformat()}",
                    plan=segment.plan,
                    phase=segment.phase,
                    bill_on=day,
                ),
                bill_on=day,
            )
        )

    def _recurring(self, segment: Segment, catalog: Catalog, price_list: str, anchor: date) -> None:
        plan = catalog.plan(segment.plan)
        prices = segment.prices(catalog, price_list, self.currency)
        if plan.billing_period is BillingPeriod.NONE or not prices.recurring:
            return
        full = Money(prices.recurring[self.currency], self.currency)
        quantity = segment.quantity if plan.per_seat else 1
        full = full * quantity
        if not full.is_positive():
            return
        rate = self._rate(segment, price_list) + (f"/x{quantity}" if plan.per_seat else "")
        cycle = cycle_for(
            segment,
            self.billing.terms,
            catalog,
            anchor=anchor,
            account_cycle_day=self.account_cycle_day,
        )
        for period in cycle.periods(self._from(segment), segment.span.end):
            piece = period.intersect(segment.span)
            if piece is None:
                continue
            bill_on = piece.start if plan.billing_mode is BillingMode.IN_ADVANCE else piece.end
            if bill_on > self.until:
                self.later(bill_on)
                return
            if self.since is not None and piece.end <= self.since:
                continue
            self.out.append(
                Proposal(
                    item=Item(
                        kind=ItemKind.RECURRING,
                        amount=prorate(full, piece.days, period.days),
                        span=piece,
                        subscription_id=self.billing.terms.id,
                        rate=rate,
                        plan=segment.plan,
                        phase=segment.phase,
                        quantity=quantity,
                        bill_on=bill_on,
                    ),
                    bill_on=bill_on,
                    period=period,
                    full=full,
                )
            )

    def _usage(self, bucket: _UsageBucket) -> None:
        span = Span(bucket.pieces[0].start, bucket.pieces[-1].end)
        if span.end > self.until:
            self.later(span.end)
            return
        if self.since is not None and span.end <= self.since:
            return
        # The day billing ends counts with the last period (usage recorded on the day of
        # a cancellation is billed, as Kill Bill bills it).
        last = self.billing.terms.billing_end
        units = [
            r.units
            for r in self.usage
            if r.subscription_id == self.billing.terms.id
            and r.name == bucket.usage.name
            and any(r.day in piece or r.day == piece.end == last for piece in bucket.pieces)
        ]
        if bucket.usage.kind is UsageKind.CAPACITY:
            total_units = max(units, default=0)
        else:
            total_units = sum(units)
        price_list = self.billing.price_list or bucket.segment.price_list
        self.out.append(
            Proposal(
                item=Item(
                    kind=ItemKind.USAGE,
                    amount=rate_usage(bucket.usage, self.currency, total_units),
                    span=span,
                    subscription_id=self.billing.terms.id,
                    rate=f"{bucket.segment.plan}/usage/{bucket.usage.name}/{price_list}",
                    plan=bucket.segment.plan,
                    phase=bucket.segment.phase,
                    quantity=total_units,
                    bill_on=span.end,
                ),
                bill_on=span.end,
            )
        )


def propose(
    billing: Billing,
    catalog_at: CatalogAt,
    *,
    currency: str,
    account_cycle_day: int | None,
    until: date,
    since: date | None = None,
    usage: Sequence[UsageRecord] = (),
    zero_amounts: bool = True,
) -> tuple[list[Proposal], date | None]:
    """Every item the subscription justifies, billable on or before ``until``.

    Args:
        billing: the subscription and the price list it is billed on.
        catalog_at: the catalog version in force on a date.
        currency: the bill-to account's currency.
        account_cycle_day: the account's billing cycle day.
        until: the last day whose billable items are wanted.
        since: skip items that end on or before this day (they cannot have changed).
        usage: recorded usage of this subscription.
        zero_amounts: propose a $0 item for a phase that charges nothing up front.

    Returns:
        The proposals, and the next day after ``until`` on which something becomes
        billable (None if nothing ever will).
    """
    proposer = _Proposer(
        billing, catalog_at, currency, account_cycle_day, until, since, usage, zero_amounts
    )
    proposer.run()
    return proposer.out, proposer.next_on
