"""What to invoice: the items a subscription's terms justify, minus what was billed.

Invoicing compares two lists. *Proposals* are every charge the subscriptions' terms justify
up to the target date (recurring periods, fixed fees, usage). *Existing* items are what
issued invoices already hold. The difference is the new invoice:

- a proposal no existing item covers is a new charge (for a period partly covered, only
  the uncovered days are charged);
- days an existing recurring item paid for that no proposal justifies any more (a
  cancellation, a pause, a quantity or plan change) get a *repair*: a credit worth what the
  item was billed minus the prorated value of the days it still covers, so a repair plus
  what remains billed is exactly what was billed;
- everything else is already billed, which is why running it twice bills nothing.

Issued invoices are never edited; a credit larger than the new charges becomes account
credit, and account credit pays later charges.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum

from billing_worker.domain.calendar import BillingPeriod, Span
from billing_worker.domain.catalog import BillingMode, Catalog, PhaseType, Usage, UsageKind
from billing_worker.domain.proration import prorate
from billing_worker.domain.subscriptions import (
    CatalogAt,
    Segment,
    Terms,
    billing_segments,
    cycle_cuts,
    cycle_for,
    run_anchor,
)
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


# -- proposals --------------------------------------------------------------------------------


def rate_usage(usage: Usage, currency: str, units: int) -> Money:
    """The charge for ``units`` of ``usage`` in one period."""
    total = Money.zero(currency)
    if usage.kind is UsageKind.CAPACITY:
        for tier in usage.tiers:
            if tier.max_units is None or units <= tier.max_units:
                return Money(tier.price[currency], currency)
        return Money(usage.tiers[-1].price[currency], currency)
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
        return f"{segment.plan}/{segment.phase}/{price_list}"

    def _fixed(self, segment: Segment, catalog: Catalog, price_list: str) -> None:
        """A phase's fixed fee, on the day the phase starts. A phase with nothing to charge
        up front -- a $0 fixed price, or a free phase with no price at all (a trial) -- gets
        a $0 item that day instead, so an invoice records that the subscription started
        (as Kill Bill and Stripe do), unless ``zero_amounts`` is off."""
        if segment.span.start != segment.phase_start:
            return
        prices = catalog.prices(segment.plan, segment.phase, price_list)
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
        prices = catalog.prices(segment.plan, segment.phase, price_list)
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


# -- reconciliation -------------------------------------------------------------------------


def _days(span: Span) -> set[int]:
    return set(range(span.start.toordinal(), span.end.toordinal()))


def _runs(days: Iterable[int]) -> Iterator[Span]:
    """Contiguous runs of day ordinals, as spans."""
    ordered = sorted(days)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        yield Span(date.fromordinal(ordered[i]), date.fromordinal(ordered[j] + 1))
        i = j + 1


def _value(item: Item, days: int) -> Money:
    """What ``days`` of an issued recurring item are worth, on that item's own terms."""
    return prorate(item.amount, days, item.span.days)


def reconcile(
    proposals: Sequence[Proposal],
    existing: Sequence[Item],
    *,
    target: date,
    since: date | None = None,
    held_from: Mapping[str, date] | None = None,
) -> list[Item]:
    """The items a new invoice needs: uncovered charges, repairs and usage corrections.

    Args:
        proposals: every item the terms justify, including ones billable after ``target``
            (so a day billed early is never mistaken for one no longer owed).
        existing: the items already on issued invoices.
        target: only proposals billable on or before this day are charged.
        since: the window the proposals were computed for.
        held_from: subscriptions whose billing is held with no end yet, and the day the
            hold began. Their held days are not billed, and days already billed are not
            credited until the hold ends (the repair is dated then), so a hold never
            moves money while the account is suspended.
    """
    issued = [item for item in existing if since is None or item.span.end > since]
    wanted: dict[tuple[str | None, str], set[int]] = defaultdict(set)
    for proposal in proposals:
        if proposal.item.kind is ItemKind.RECURRING:
            wanted[(proposal.item.subscription_id, proposal.item.rate)] |= _days(proposal.item.span)
    new, covered = _repairs(issued, wanted, held_from or {})
    billed_fixed = {(i.subscription_id, i.rate) for i in issued if i.kind is ItemKind.FIXED}
    billed_usage = _usage_billed(issued)
    for proposal in proposals:
        item = proposal.item
        if proposal.bill_on > target:
            continue
        if item.kind is ItemKind.RECURRING:
            new.extend(_uncovered(proposal, covered[(item.subscription_id, item.rate)]))
        elif item.kind is ItemKind.FIXED:
            if (item.subscription_id, item.rate) not in billed_fixed:
                new.append(item)
        elif item.kind is ItemKind.USAGE:
            prior = billed_usage.get((item.subscription_id, item.rate, item.span))
            if prior is None:
                if item.quantity > 0:
                    new.append(item)
            elif item.amount != prior:
                new.append(replace(item, amount=item.amount - prior))
    return new


def _usage_billed(issued: Sequence[Item]) -> dict[tuple[str | None, str, Span], Money]:
    """What each (subscription, usage rate, period) was billed so far, corrections included."""
    billed: dict[tuple[str | None, str, Span], Money] = {}
    for item in issued:
        if item.kind is ItemKind.USAGE:
            key = (item.subscription_id, item.rate, item.span)
            prior = billed.get(key)
            billed[key] = item.amount if prior is None else prior + item.amount
    return billed


def _repairs(
    issued: Sequence[Item],
    wanted: dict[tuple[str | None, str], set[int]],
    held_from: Mapping[str, date],
) -> tuple[list[Item], dict[tuple[str | None, str], set[int]]]:
    """Credit the days issued recurring items cover that nothing wants any more (except
    days of a hold still running: they are credited when it ends).

    Returns the repairs and, per (subscription, rate), the days still covered.
    """
    repaired: dict[str, set[int]] = defaultdict(set)
    #: What has been credited against each item so far (repairs and adjustments).
    taken: dict[str, Money] = {}
    for item in issued:
        if item.kind is ItemKind.REPAIR and item.linked_to is not None:
            repaired[item.linked_to] |= _days(item.span)
        if item.kind in (ItemKind.REPAIR, ItemKind.ADJUSTMENT) and item.linked_to is not None:
            prior = taken.get(item.linked_to)
            taken[item.linked_to] = item.amount if prior is None else prior + item.amount
    repairs: list[Item] = []
    covered: dict[tuple[str | None, str], set[int]] = defaultdict(set)
    for item in issued:
        if item.kind is not ItemKind.RECURRING or item.id is None:
            continue
        key = (item.subscription_id, item.rate)
        still = _days(item.span) - repaired[item.id]
        unwanted = still - wanted[key]
        hold = held_from.get(item.subscription_id or "")
        if hold is not None:
            unwanted = {d for d in unwanted if d < hold.toordinal()}
        for run in _runs(unwanted):
            before = _value(item, len(still))
            still -= _days(run)
            credit = _value(item, len(still)) - before
            # never credit more than is left of the item once adjusted and repaired
            zero = Money.zero(item.amount.currency)
            left = max(item.amount + taken.get(item.id, zero), zero)
            credit = max(credit, -left)
            taken[item.id] = taken.get(item.id, zero) + credit
            if not credit.is_zero():
                repairs.append(
                    replace(
                        item,
                        kind=ItemKind.REPAIR,
                        amount=credit,
                        span=run,
                        linked_to=item.id,
                        bill_on=None,
                        id=None,
                    )
                )
        covered[key] |= still
    return repairs, covered


def _uncovered(proposal: Proposal, covered: set[int]) -> list[Item]:
    item = proposal.item
    missing = _days(item.span) - covered
    if not missing:
        return []
    if len(missing) == item.span.days:
        return [item]
    full, period = proposal.full, proposal.period
    if full is None or period is None:
        raise ValueError("a recurring proposal carries its period and full price")
    out = []
    for run in _runs(missing):
        amount = prorate(full, run.days, period.days)
        if not amount.is_zero():
            out.append(replace(item, amount=amount, span=run, bill_on=run.start))
    return out


# -- invoices -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Draft:
    items: tuple[Item, ...]
    #: Charges minus credits: never negative.
    total: Money
    #: The account's credit after this invoice.
    credit_after: Money


def assemble(items: Sequence[Item], *, credit: Money, day: date) -> Draft | None:
    """Turn new items into an invoice: spend account credit, bank a surplus of credits.

    Returns None when there is nothing to invoice.
    """
    if not items:
        return None
    currency = credit.currency
    total = sum((i.amount for i in items), Money.zero(currency))
    lines = list(items)
    one_day = Span(day, day + timedelta(days=1))
    if total.amount < 0:
        lines.append(Item(kind=ItemKind.CREDIT_GENERATED, amount=-total, span=one_day))
        credit = credit - total
        total = Money.zero(currency)
    elif total.is_positive() and credit.is_positive():
        spent = min(credit, total)
        lines.append(Item(kind=ItemKind.CREDIT_APPLIED, amount=-spent, span=one_day))
        credit = credit - spent
        total = total - spent
    return Draft(items=tuple(lines), total=total, credit_after=credit)


def by_billing_day(items: Sequence[Item], today: date) -> list[tuple[date, list[Item]]]:
    """Split new items by the day they became billable, oldest first.

    A run that catches up (a back-dated subscription, a worker that was down) issues the
    invoices it would have issued on time, so due dates do not move with the outage.
    Repairs and other immediate items go on today's invoice.
    """
    days: dict[date, list[Item]] = defaultdict(list)
    for item in items:
        day = item.bill_on if item.bill_on is not None and item.bill_on < today else today
        days[day].append(item)
    return sorted(days.items())


def invoice_total(items: Iterable[Item], currency: str) -> Money:
    return sum((i.amount for i in items), Money.zero(currency))


def balance(total: Money, payments: Money, refunds: Money) -> Money:
    """Invoice balance: charges - credits - payments + refunds, never below zero."""
    due = total - payments + refunds
    return due if due.amount > 0 else Money.zero(total.currency)


def next_items(
    billings: Sequence[Billing],
    catalog_at: CatalogAt,
    *,
    existing: Sequence[Item],
    currency: str,
    account_cycle_day: int | None,
    target: date,
    since: date | None = None,
    usage: Sequence[UsageRecord] = (),
    zero_amounts: bool = True,
) -> tuple[list[Item], date | None]:
    """The items the next invoice of a bill-to account needs on ``target``.

    Returns:
        The new items (empty: nothing to invoice) and the next day on which something
        becomes billable, for the scheduler.
    """
    horizon = max([target, *(i.span.end for i in existing if i.kind is ItemKind.RECURRING)])
    proposals: list[Proposal] = []
    upcoming: list[date] = []
    for billing in billings:
        found, next_on = propose(
            billing,
            catalog_at,
            currency=currency,
            account_cycle_day=account_cycle_day,
            until=horizon,
            since=since,
            usage=usage,
            zero_amounts=zero_amounts,
        )
        proposals += found
        upcoming += [p.bill_on for p in found if p.bill_on > target]
        if next_on is not None:
            upcoming.append(next_on)
    held_from = {
        b.terms.id: hold.start for b in billings for hold in b.terms.holds if hold.resume is None
    }
    items = reconcile(proposals, existing, target=target, since=since, held_from=held_from)
    return items, min(upcoming, default=None)
