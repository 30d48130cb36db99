"""A subscription's life as data, and the two views billing and access take of it.

A subscription is its creation terms plus dated events (plan changes, quantity changes,
pauses, a cancellation). Nothing here is stored state: the *billing view* (which plan,
phase, price list and quantity is billed on each day) and the *entitlement view* (on which
days its users have access) are derived from those terms, so a change, an uncancel or a
pause is a new event and every amount follows from the events alone.

Entitlement and billing have their own dates: access can start before billing (a beta),
and a cancellation can end access now while billing runs to the end of the term.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from itertools import pairwise

from billing_worker.domain.calendar import (
    BillingPeriod,
    Cycle,
    Span,
    account_cycle,
    anniversary_cycle,
)
from billing_worker.domain.catalog import (
    DEFAULT_PRICE_LIST,
    BillingAlignment,
    Catalog,
    PhasePrice,
    PhaseType,
)

#: The end of an open-ended span.
FOREVER = date(9999, 12, 31)

CatalogAt = Callable[[date], Catalog]


class SubscriptionError(ValueError):
    """A change that the subscription's terms or the catalog do not allow."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """A price negotiated for one phase of a subscription's plan, in its bill-to account's
    currency: it replaces the catalog's (and any price list's) fixed or recurring price."""

    phase: PhaseType
    fixed: Decimal | None = None
    recurring: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PlanChange:
    effective: date
    plan: str
    price_list: str = DEFAULT_PRICE_LIST
    #: Start the new plan's phases at the change (else keep the subscription's phase clock).
    restart_phases: bool = False
    #: The new plan's negotiated prices (a change leaves the old plan's behind).
    price_overrides: tuple[PriceOverride, ...] = ()


@dataclass(frozen=True, slots=True)
class QuantityChange:
    effective: date
    quantity: int


@dataclass(frozen=True, slots=True)
class Pause:
    """Access and billing both stop from ``start`` until ``resume`` (None: not yet)."""

    start: date
    resume: date | None = None

    @property
    def span(self) -> Span:
        return Span(self.start, self.resume or FOREVER)


@dataclass(frozen=True, slots=True)
class CycleChange:
    """The account's billing cycle day changed: periods from ``effective`` (the end of the
    period then current) fall on ``day``; earlier ones stay on ``previous`` (None: the
    subscription's anniversary day), so nothing already billed moves."""

    effective: date
    day: int
    previous: int | None


@dataclass(frozen=True, slots=True)
class Cancellation:
    entitlement_end: date
    billing_end: date


@dataclass(frozen=True, slots=True)
class Terms:
    id: str
    plan: str
    entitlement_start: date
    billing_start: date
    price_list: str = DEFAULT_PRICE_LIST
    quantity: int = 1
    #: The subscription's own billing cycle day (None: the account's, or its anniversary).
    cycle_day: int | None = None
    #: For an add-on, the base subscription it belongs to.
    base_id: str | None = None
    changes: tuple[PlanChange, ...] = ()
    quantities: tuple[QuantityChange, ...] = ()
    pauses: tuple[Pause, ...] = ()
    #: Billing held while the account is suspended for non-payment (access is the
    #: standing's business): held days are not billed, and credited if already billed.
    holds: tuple[Pause, ...] = ()
    cancellation: Cancellation | None = None
    #: Changes of the account's billing cycle day, in effective order.
    cycle_changes: tuple[CycleChange, ...] = ()
    #: The first plan's negotiated prices.
    price_overrides: tuple[PriceOverride, ...] = ()

    @property
    def billing_end(self) -> date:
        return self.cancellation.billing_end if self.cancellation else FOREVER

    @property
    def entitlement_end(self) -> date:
        return self.cancellation.entitlement_end if self.cancellation else FOREVER


@dataclass(frozen=True, slots=True)
class Segment:
    """Days billed alike: one plan, phase, price list and quantity."""

    span: Span
    plan: str
    phase: PhaseType
    phase_start: date
    price_list: str
    quantity: int
    #: The catalog version the plan was chosen under (dates the plan's definition).
    catalog_date: date
    #: The phase's negotiated price, if the subscription has one.
    override: PriceOverride | None = None

    def prices(self, catalog: Catalog, price_list: str, currency: str) -> PhasePrice:
        """The phase's fixed and recurring prices on ``price_list``, the negotiated ones
        in their place."""
        listed = catalog.prices(self.plan, self.phase, price_list)
        override = self.override
        if override is None:
            return listed
        fixed, recurring = override.fixed, override.recurring
        return PhasePrice(
            fixed=listed.fixed if fixed is None else {currency: fixed},
            recurring=listed.recurring if recurring is None else {currency: recurring},
        )


@dataclass(frozen=True, slots=True)
class _PlanRun:
    span: Span
    plan: str
    price_list: str
    phase_clock: date
    chosen_on: date
    overrides: tuple[PriceOverride, ...] = ()


def _plan_runs(terms: Terms, start: date, end: date) -> list[_PlanRun]:
    runs: list[_PlanRun] = []
    current = _PlanRun(Span(start, end), terms.plan, terms.price_list, start, terms.billing_start,
                       terms.price_overrides)  # fmt: skip
    for change in sorted(terms.changes, key=lambda c: c.effective):
        at = min(max(change.effective, start), end)
        if at > current.span.start:
            runs.append(replace(current, span=Span(current.span.start, at)))
        clock = at if change.restart_phases else current.phase_clock
        current = _PlanRun(Span(at, end), change.plan, change.price_list, clock, change.effective,
                           change.price_overrides)  # fmt: skip
    if current.span.days > 0:
        runs.append(current)
    return runs


def _phase_spans(catalog: Catalog, plan: str, clock: date) -> list[tuple[PhaseType, Span]]:
    spans: list[tuple[PhaseType, Span]] = []
    start = clock
    for phase in catalog.plan(plan).phases:
        end = phase.duration.after(start) or FOREVER
        spans.append((phase.type, Span(start, end)))
        if end >= FOREVER:
            break
        start = end
    return spans


def _cut(spans: Sequence[Span], holes: Sequence[Span]) -> list[Span]:
    """``spans`` with the days of ``holes`` removed."""
    out = list(spans)
    for hole in holes:
        kept: list[Span] = []
        for span in out:
            if hole.intersect(span) is None:
                kept.append(span)
                continue
            if span.start < hole.start:
                kept.append(Span(span.start, hole.start))
            if hole.end < span.end:
                kept.append(Span(hole.end, span.end))
        out = kept
    return out


def quantity_on(terms: Terms, day: date) -> int:
    quantity = terms.quantity
    for change in sorted(terms.quantities, key=lambda c: c.effective):
        if change.effective <= day:
            quantity = change.quantity
    return quantity


def billing_segments(terms: Terms, catalog_at: CatalogAt) -> list[Segment]:
    """The billing view: every billed day, split wherever what is billed changes."""
    end = terms.billing_end
    if end <= terms.billing_start:
        return []
    cuts = sorted({q.effective for q in terms.quantities} | cycle_cuts(terms))
    segments: list[Segment] = []
    for run in _plan_runs(terms, terms.billing_start, end):
        catalog = catalog_at(run.chosen_on)
        for phase, phase_span in _phase_spans(catalog, run.plan, run.phase_clock):
            piece = phase_span.intersect(run.span)
            if piece is None:
                continue
            bounds = [piece.start, *[c for c in cuts if piece.start < c < piece.end], piece.end]
            for start, stop in pairwise(bounds):
                holes = [p.span for p in (*terms.pauses, *terms.holds)]
                for span in _cut([Span(start, stop)], holes):
                    segments.append(
                        Segment(
                            span=span,
                            plan=run.plan,
                            phase=phase,
                            phase_start=phase_span.start,
                            price_list=run.price_list,
                            quantity=quantity_on(terms, span.start),
                            catalog_date=catalog.effective_date,
                            override=next((o for o in run.overrides if o.phase is phase), None),
                        )
                    )
    return segments


def plan_end(terms: Terms, catalog_at: CatalogAt) -> date:
    """The day the current plan's phases run out: FOREVER when its last phase is unlimited
    (a plan ending in a fixed term ends the subscription there)."""
    runs = _plan_runs(terms, terms.billing_start, FOREVER)
    if not runs:
        return FOREVER
    last = runs[-1]
    spans = _phase_spans(catalog_at(last.chosen_on), last.plan, last.phase_clock)
    return spans[-1][1].end


def entitlement_spans(terms: Terms, catalog_at: CatalogAt | None = None) -> list[Span]:
    """The days on which the subscription grants access; with the catalog, access also
    ends where the plan's phases do."""
    end = terms.entitlement_end
    if catalog_at is not None:
        end = min(end, plan_end(terms, catalog_at))
    if end <= terms.entitlement_start:
        return []
    return _cut([Span(terms.entitlement_start, end)], [p.span for p in terms.pauses])


def first_paid_day(catalog: Catalog, plan: str, start: date) -> date:
    """The day a subscription to ``plan`` starting on ``start`` first has a recurring
    price: after its free phases (a trial). An account with no billing cycle day takes it
    from this day, so a 30-day trial from 1 May bills on the 31st (Kill Bill does the same).
    A plan that is never priced recurringly keeps ``start``."""
    day = start
    for phase in catalog.plan(plan).phases:
        if phase.recurring:
            return day
        end = phase.duration.after(day)
        if end is None:
            break
        day = end
    return start


def _change_in_force(terms: Terms, day: date) -> PlanChange | None:
    """The last plan change effective by ``day`` (None: the first plan is in force); of two
    on the same day, the later made."""
    in_force = [c for c in sorted(terms.changes, key=lambda c: c.effective) if c.effective <= day]
    return in_force[-1] if in_force else None


def plan_on(terms: Terms, day: date) -> tuple[str, str]:
    """The plan and price list in force on ``day`` (the first plan before billing starts)."""
    change = _change_in_force(terms, day)
    return (terms.plan, terms.price_list) if change is None else (change.plan, change.price_list)


def overrides_on(terms: Terms, day: date) -> tuple[PriceOverride, ...]:
    """The negotiated prices of the plan in force on ``day``."""
    change = _change_in_force(terms, day)
    return terms.price_overrides if change is None else change.price_overrides


def phase_on(terms: Terms, catalog_at: CatalogAt, day: date) -> PhaseType | None:
    """The billing phase on ``day`` (None outside billing or during a pause)."""
    for segment in billing_segments(terms, catalog_at):
        if day in segment.span:
            return segment.phase
    return None


def entitled_on(terms: Terms, day: date) -> bool:
    return any(day in span for span in entitlement_spans(terms))


# -- billing cycles --------------------------------------------------------------------------


def cycle_for(
    segment: Segment,
    terms: Terms,
    catalog: Catalog,
    *,
    anchor: date,
    account_cycle_day: int | None,
    period: BillingPeriod | None = None,
) -> Cycle:
    """The cycle that bills ``segment`` (or its usage, with ``period``).

    Args:
        segment: the billed days.
        terms: the subscription (for its own billing cycle day).
        catalog: the catalog the segment's plan comes from.
        anchor: the first billed day of the run of segments sharing this billing period.
        account_cycle_day: the account's billing cycle day (None: the anchor's day).
        period: a period other than the plan's (for usage).
    """
    plan = catalog.plan(segment.plan)
    kind = period or plan.billing_period
    if catalog.billing_alignment(segment.plan) is BillingAlignment.SUBSCRIPTION:
        if terms.cycle_day is not None:
            return account_cycle(kind, anchor, terms.cycle_day)
        return anniversary_cycle(kind, anchor)
    day = terms.cycle_day or cycle_day_at(terms, anchor, account_cycle_day) or anchor.day
    return account_cycle(kind, anchor, day)


def cycle_cuts(terms: Terms) -> set[date]:
    """Days a billing run restarts on because the account's cycle day changed."""
    return {c.effective for c in terms.cycle_changes} if terms.cycle_day is None else set()


def cycle_day_at(terms: Terms, day: date, account_cycle_day: int | None) -> int | None:
    """The account's billing cycle day for periods from ``day`` (its value then)."""
    in_force = [c for c in terms.cycle_changes if c.effective <= day]
    if in_force:
        return in_force[-1].day
    if terms.cycle_changes:
        return terms.cycle_changes[0].previous
    return account_cycle_day


def current_term(
    terms: Terms, catalog_at: CatalogAt, day: date, account_cycle_day: int | None
) -> Span | None:
    """The billing period that ``day`` falls in (None when nothing is billed that day)."""
    segments = billing_segments(terms, catalog_at)
    for i, segment in enumerate(segments):
        if day not in segment.span:
            continue
        catalog = catalog_at(segment.catalog_date)
        period = catalog.plan(segment.plan).billing_period
        if period is BillingPeriod.NONE:
            return Span(segment.span.start, segment.span.end)
        anchor = run_anchor(segments, i, catalog_at, cycle_cuts(terms))
        return cycle_for(
            segment, terms, catalog, anchor=anchor, account_cycle_day=account_cycle_day
        ).containing(day)
    return None


def run_anchor(
    segments: Sequence[Segment],
    index: int,
    catalog_at: CatalogAt,
    restarts: Collection[date] = frozenset(),
) -> date:
    """The first day of the run of billed segments, up to ``index``, with one billing period.

    For subscription alignment the anniversary is the subscription's, whatever the billing
    period: a trial without a recurring price does not move it (the run starts where the
    first priced phase does), and neither does a change of billing period (a monthly plan
    changed to an annual one at once is billed from the change to the next anniversary).
    For account alignment a run also restarts on each day in ``restarts`` (where the
    account's billing cycle day changed: see ``cycle_cuts``).
    """

    def period_of(s: Segment) -> BillingPeriod:
        return catalog_at(s.catalog_date).plan(s.plan).billing_period

    current = segments[index]
    catalog = catalog_at(current.catalog_date)
    by_subscription = catalog.billing_alignment(current.plan) is BillingAlignment.SUBSCRIPTION
    kind = period_of(current)
    restarts = frozenset() if by_subscription else restarts
    start = index
    while (
        start > 0
        and segments[start].span.start not in restarts
        and (by_subscription or period_of(segments[start - 1]) is kind)
    ):
        start -= 1
    for segment in segments[start : index + 1]:
        prices = catalog_at(segment.catalog_date).plan(segment.plan).phase(segment.phase)
        if prices.recurring:
            return segment.span.start
    return segments[start].span.start
